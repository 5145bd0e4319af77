"""RL data: our parquet validated up front, released X-Coder-RL-40k rows converted, and the
sandbox_fusion view graded by stock verl against `xcoder judge serve`."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xcoder.judge import Judge
from xcoder.records import RLRow, read_records, read_table, write_records
from xcoder.rl import data as rldata
from xcoder.rl.reward import CodeReward, RewardItem, RewardSettings

from .helpers import SUM_ANSWER, rl_row, stdio_truth, sum_tests, write_sum_parquet


def test_our_parquet_is_validated_row_by_row(tmp_path):
    good = write_sum_parquet(tmp_path / "ok.parquet", copies=3)
    assert rldata.validate_rl_file(good) == 3
    rows = [rl_row("a", 0, stdio_truth(sum_tests(2))), rl_row("b", 1, json.dumps({"kind": "stdio", "tests": []}))]
    bad = write_records(tmp_path / "bad.parquet", rows, RLRow)
    with pytest.raises(rldata.DataError, match=r"bad.parquet: row 1: reward_model.ground_truth: .*no tests"):
        rldata.validate_rl_file(bad)


def _released_file(path):
    """Three rows in the released layout (paper-recipe §7), with its encoding quirks."""
    stdin_io = json.dumps(json.dumps(json.dumps({"inputs": ["3\n1 2 3\n", "2\n5 5\n"], "outputs": ["6\n", "10\n"]})))
    leet_io = json.dumps(json.dumps({"test_cases": ["assert Solution().add(1, 2) == 3",
                                                    "assert Solution().add(2, 2) == 4"]}))
    lcb_uts = json.dumps({"input_output": json.dumps({"inputs": ["1\n2", "[1, 2]\n[3]"],
                                                      "outputs": ["[1, 2]", "[1, 2, 3]"],
                                                      "fn_name": "join"})})
    rows = [
        {"id": "cf-1", "prompt": [{"role": "user", "content": "sum"}], "prompter_type": "codeforces",
         "type": "stdin_stdout",
         "input_output": stdin_io, "selected_uts": None, "problem": "sum", "data_source": "x",
         "extra_info": {"pass_rate": 0.5}},
        {"id": "lc-1", "prompt": [{"role": "user", "content": "add"}], "prompter_type": "leetcode", "type": "",
         "input_output": leet_io, "selected_uts": None, "problem": "add", "data_source": "x",
         "extra_info": {"pass_rate": 0.9}},
        {"id": "lcb-1", "prompt": [{"role": "user", "content": "join"}], "prompter_type": "livecodebench", "type": "",
         "input_output": "{}", "selected_uts": lcb_uts, "problem": "join", "data_source": "x",
         "extra_info": {"pass_rate": 0.1}},
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


ANSWERS = {
    "cf-1": SUM_ANSWER,
    "lc-1": "```python\nclass Solution:\n    def add(self, a, b):\n        return a + b\n```",
    "lcb-1": "```python\nclass Solution:\n    def join(self, a, b):\n"
    "        return (a if isinstance(a, list) else [a]) + (b if isinstance(b, list) else [b])\n```",
}


def test_released_rows_convert_and_grade(tmp_path):
    src = _released_file(tmp_path / "part_0000.parquet")
    counts = rldata.convert_released([src], tmp_path / "train.parquet")
    assert counts == {str(src): 3}
    rows = read_records(tmp_path / "train.parquet", RLRow)
    kinds = {r.extra_info["task_id"]: r.extra_info["kind"] for r in rows}
    assert kinds == {"cf-1": "stdio", "lc-1": "assert", "lcb-1": "call"}
    assert [r.extra_info["index"] for r in rows] == [0, 1, 2]  # file order kept (pass-rate curricula)
    reward = CodeReward(RewardSettings.defaults(time_s=5, judge_workers=2))
    try:
        out = reward.score_batch([RewardItem(r.extra_info["task_id"], ANSWERS[r.extra_info["task_id"]],
                                             r.reward_model["ground_truth"], r.extra_info) for r in rows])
    finally:
        reward.close()
    assert {k: v.score for k, v in out.items()} == {"cf-1": 5.0, "lc-1": 5.0, "lcb-1": 5.0}, out


def test_released_row_without_tests_names_file_and_row(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "x", "prompt": "q", "prompter_type": "codeforces",
                                          "input_output": json.dumps({"inputs": ["1"]}), "selected_uts": None}]), path)
    with pytest.raises(rldata.DataError, match=r"bad.parquet: row 0"):
        rldata.convert_released([path], tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@contextmanager
def _judge_server():
    from xcoder.judge.server import ServerSettings, serve_in_background

    with Judge(workers=2) as judge, serve_in_background(judge, ServerSettings.defaults(port=0)) as url:
        yield url


def test_stock_verl_sandbox_fusion_reward_against_xcoder_judge_serve(tmp_path):
    """data_source mapping + verl-format ground truth: verl's own default_compute_score grades our
    rows through `xcoder judge serve`'s /run_code, no custom reward function involved."""
    from verl.utils.reward_score import default_compute_score

    src = write_sum_parquet(tmp_path / "rl.parquet", copies=1)
    view = rldata.sandbox_fusion_view(read_table(src, RLRow), "codecontests")
    row = view.to_pylist()[0]
    assert row["data_source"] == "codecontests" and "inputs" in json.loads(row["reward_model"]["ground_truth"])
    with _judge_server() as url:
        kw = dict(sandbox_fusion_url=f"{url}/run_code", concurrent_semaphore=threading.Semaphore(4),
                  memory_limit_mb=256)
        good = default_compute_score(row["data_source"], SUM_ANSWER, row["reward_model"]["ground_truth"], **kw)
        bad = default_compute_score(row["data_source"], "```python\nprint(0)\n```", row["reward_model"]["ground_truth"],
                                    **kw)
    score = lambda r: r["score"] if isinstance(r, dict) else r  # noqa: E731
    assert score(good) == 1.0 and score(bad) == 0.0
    # the same view file still works with our reward (it reads verl's format too)
    reward = CodeReward(RewardSettings.defaults(judge_workers=2))
    try:
        assert reward.score_one(SUM_ANSWER, row["reward_model"]["ground_truth"]).score == 5.0
    finally:
        reward.close()


def test_reward_through_a_judge_server_matches_local(tmp_path):
    truth = stdio_truth(sum_tests(4))
    with _judge_server() as url:
        remote = CodeReward(RewardSettings.defaults(judge_mode="server", judge_url=url))
        try:
            got = remote.score_batch([RewardItem("g", SUM_ANSWER, truth),
                                      RewardItem("w", "```python\nprint(6)\n```", truth)])
        finally:
            remote.close()
    assert got["g"].score == 5.0 and got["w"].passed == 1 and got["w"].score == pytest.approx(5.0 / 4)
