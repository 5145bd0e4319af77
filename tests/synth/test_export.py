"""Export helpers: passing solutions, pass-rate buckets and ordering, RL ground truth the reward reads."""

from __future__ import annotations

import json

import pytest

from xcoder.records import Solution, Task, Verification
from xcoder.synth.export import build


def _ver(matrix, golden="s1"):
    tests = [{"input": "[1, 2]\n3", "output": "1", "weight": 2.0, "tag": "edge"}]
    return Verification(task_id="t", status="kept", reason="", kind="call", tests=json.dumps(tests),
                        golden_solution_id=golden, pass_matrix=json.dumps(matrix))


def _sol(sid, reasoning="why"):
    return Solution(solution_id=sid, task_id="t", teacher="x", response="final\n```python\nx=1\n```",
                    reasoning=reasoning,
                    code="x=1\n")


def test_passing_solutions_put_the_golden_first_and_skip_failures():
    ver = _ver({"s0": [True, True], "s1": [True, True], "s2": [True, False]})
    assert [s.solution_id for s in build.passing_solutions(ver, [_sol("s0"), _sol("s1"), _sol("s2")])] == ["s1", "s0"]
    assert build.teacher_pass_rate(ver) == pytest.approx(2 / 3)


def test_buckets_and_ordering():
    buckets = {"easy": 0.75, "medium": 0.25, "hard": 0.0}
    assert [build.difficulty_bucket(r, buckets) for r in (1.0, 0.5, 0.1)] == ["easy", "medium", "hard"]
    rows = [(0.2, "b"), (0.9, "a"), (0.5, "c")]
    assert build.order_rows(rows, "pass_rate_desc") == ["a", "c", "b"]
    assert build.order_rows(rows, "none") == ["b", "a", "c"]
    with pytest.raises(ValueError, match="unknown"):
        build.order_rows(rows, "random")


def test_assistant_turn_keeps_reasoning_and_answer():
    assert build.assistant_text(_sol("s", "long thought")).startswith("<think>\nlong thought\n</think>\n\nfinal")
    assert build.assistant_text(_sol("s", "")) .startswith("final")


def test_rl_ground_truth_is_read_by_the_rl_reward():
    from xcoder.rl.ground_truth import parse_ground_truth

    task = Task(task_id="t", subtree_idx=0, style="leetcode", question="q", stage1="{}", fn_name="f",
                starter_code="class Solution:\n    def f(self, a, b):\n        ")
    row = build.rl_row(task, _ver({"s1": [True]}), [{"role": "user", "content": "q"}], index=0,
                       data_source="xcoder_synth", pass_rate=1.0, difficulty="easy")
    suite = parse_ground_truth(row.reward_model["ground_truth"])
    assert suite.kind == "call" and suite.fn_name == "f"
    assert suite.tests[0].input == "[1, 2]\n3" and suite.tests[0].output == "1"


def test_rl_reward_compares_like_the_vote_that_made_the_labels():
    """Vote labels are stored after `lines` normalisation (trailing spaces per line removed); a correct
    program printing "1 2 \\n3 4 \\n" must be AC against its own label (real judge, export -> reward)."""
    from xcoder.judge import Judge
    from xcoder.rl.ground_truth import parse_ground_truth
    from xcoder.rl.reward import CodeReward, RewardSettings
    from xcoder.synth.verify.core import normalize_output

    label = normalize_output("1 2 \n3 4 \n", "stdio", "lines")
    assert label == "1 2\n3 4"
    ver = Verification(task_id="t", status="kept", reason="", kind="stdio",
                       tests=json.dumps([{"input": "", "output": label, "weight": 1.0}]),
                       golden_solution_id="s1", pass_matrix=json.dumps({"s1": [True]}))
    task = Task(task_id="t", subtree_idx=0, style="codeforces", question="q", stage1="{}")
    row = build.rl_row(task, ver, [{"role": "user", "content": "q"}], index=0, data_source="xcoder_synth",
                       pass_rate=1.0, difficulty="easy", vote_normalize="lines")
    truth = row.reward_model["ground_truth"]
    assert parse_ground_truth(truth).compare == "lines"
    program = "<think>x</think>\n```python\nprint('1 2 ')\nprint('3 4 ')\n```"
    with Judge(workers=1) as judge:
        reward = CodeReward(RewardSettings.defaults(compare="strip", k=10), client=judge)
        assert reward.score_one(program, truth).score == 5.0  # strip alone would say WA
        legacy = json.dumps({k: v for k, v in json.loads(truth).items() if k != "compare"})
        assert reward.score_one(program, legacy).score == 0.0  # released data: rl.reward.compare applies
    with pytest.raises(ValueError, match="normalize"):
        build.rl_row(task, ver, [], index=0, data_source="x", pass_rate=1.0, difficulty="easy", vote_normalize="bogus")
