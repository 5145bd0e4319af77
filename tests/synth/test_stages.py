"""The synthesis stages end to end on hand-built subtrees and a scripted LLM: every kind of
malformed LLM output is dropped and counted, good tasks come out verified, reruns redo nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xcoder.config import compose
from xcoder.llm.types import ChatResult, Completion
from xcoder.records import FeatureSubtree, RLRow, SFTRow, Verification, read_records, write_records
from xcoder.synth import llm_io
from xcoder.synth.stage import run_stages

from .fake_llm import FakeClient
from .samples import CF_QUESTION, LC_QUESTION, LC_STARTER

CF_GOOD = "```python\nn = int(input())\nprint(sum(map(int, input().split())))\n```"
CF_GOOD2 = "```python\nimport sys\nd = sys.stdin.read().split()\nprint(sum(int(x) for x in d[1:]))\n```"
CF_WRONG = "```python\nn = int(input())\nprint(max(map(int, input().split())))\n```"
LC_GOOD = ("```python\nclass Solution:\n    def countPairs(self, nums, k):\n        n = len(nums)\n"
           "        return sum(nums[i] + nums[j] == k for i in range(n) for j in range(i + 1, n))\n```")
LC_GOOD2 = ("```python\nfrom collections import Counter\nclass Solution:\n    def countPairs(self, nums, k):\n"
            "        seen = Counter(); c = 0\n        for x in nums:\n            c += seen[k - x]; seen[x] += 1\n"
            "        return c\n```")
LC_WRONG = ("```python\nclass Solution:\n    def countPairs(self, nums, k):\n        n = len(nums)\n"
            "        return sum(nums[i] + nums[j] == k for i in range(n) for j in range(n) if i != j)\n```")
CF_GEN = ("```python\nimport random\ns, sc = input().split()\nrandom.seed(int(s))\nn = random.randint(1, 5)\nprint(n)\n"
          "print(*[random.randint(0, 1000) for _ in range(n)])\n```")
CF_VAL = ("```python\nimport sys\nl = sys.stdin.read().split('\\n')\nn = int(l[0])\nassert 1 <= n <= 100\n"
          "a = l[1].split()\nassert len(a) == n and all(0 <= int(x) <= 1000 for x in a)\n```")
LC_GEN_BROKEN = "```python\nimport sys\nraise SystemExit(3)\n```"
LC_VAL = ("```python\nimport json, sys\nl = [x for x in sys.stdin.read().split('\\n') if x.strip()]\n"
          "nums, k = json.loads(l[0]), json.loads(l[1])\nassert 1 <= len(nums) <= 100 and -100 <= k <= 100\n```")
STAGE1 = json.dumps({"feature_roles_tree": {"a": {"x": {"feature": "x", "potential_use": "u"}}},
                     "selected_features_tree": {"a": {"x": {"feature": "x", "potential_use": "u"}}},
                     "integration_strategy": "combine"})


TRUNCATED = Completion(text=STAGE1[:40], finish_reason="length")  # hit max_tokens: a real drop, not retried


def answer(req):
    m = req.meta
    if "subtree_idx" in m:
        idx = m["subtree_idx"]
        if m["step"] == "stage1":
            return {0: "I could not decide.", 2: TRUNCATED}.get(idx, STAGE1)
        if idx == 1:
            return json.dumps({"question": CF_QUESTION.replace("## Input", "## Data")})
        if idx == 3:
            return json.dumps({"question": CF_QUESTION})
        return json.dumps({"question": LC_QUESTION, "starter_code": LC_STARTER})
    lc = "000004" in m["task_id"]
    if "teacher" in m:
        good, good2, wrong = (LC_GOOD, LC_GOOD2, LC_WRONG) if lc else (CF_GOOD, CF_GOOD2, CF_WRONG)
        return [f"<think>reason {m['i']}</think>{good}", good2, good, wrong, "no code, sorry",
                "```python\ndef f(:\n```"][m["i"]]
    if m["what"] == "inputs":
        if lc:
            items = [{"args": {"nums": [1, 2, 3], "k": 4}}, {"args": {"nums": [5, 5, 5], "k": 10}, "tag": "edge"},
                     {"args": {"nums": [0], "k": 0}, "tag": "edge"}, {"args": {"nums": [1, -1, 2, -2], "k": 0}},
                     {"args": {"nums": [7]}}, {"args": {"nums": [1], "k": 1000}}]  # malformed, invalid
        else:
            items = [{"input": "2\n5 6\n"}, {"input": "1\n0\n", "tag": "edge"}, {"input": "4\n1 2 3 1000\n"},
                     {"input": "3\n9 9 9\n"}, {"nope": 1}, {"input": "0\n\n", "tag": "edge"}]  # malformed, invalid
        return "```json\n" + json.dumps({"inputs": items}) + "\n```"
    if m["what"] == "generator":
        return LC_GEN_BROKEN if lc else CF_GEN
    return LC_VAL if lc else CF_VAL


@pytest.fixture()
def synth_cfg(tmp_path, monkeypatch):
    subtrees = [FeatureSubtree(idx=i, features=json.dumps({"algorithm": {"search": [f"leaf{i}", "b"]}}), leaf_count=2)
                for i in range(5)]
    path = write_records(tmp_path / "subtrees.parquet", subtrees, FeatureSubtree)
    fake = FakeClient(answer)
    monkeypatch.setattr(llm_io, "make_client", lambda cfg, stage: fake)
    cfg = compose(["experiment=demo", f"run.output_dir={tmp_path}/run", f"synth.features.subtrees_parquet={path}",
                   "synth.stages=[tasks,solutions,tests,verify,export]",
                   "synth.tasks.style_cycle=[codeforces,codeforces,codeforces,codeforces,leetcode]",
                   "synth.solutions.teachers=[{name: t, model: null, n: 6}]",
                   "synth.verify.golden.min_tests=4", "synth.tests.generator.seeds={small: 2, edge: 1, stress: 1}"])
    return cfg, fake


def test_malformed_outputs_are_dropped_and_counted_at_every_step(synth_cfg):
    cfg, fake = synth_cfg
    manifest = run_stages(cfg)
    st = manifest["stages"]
    assert st["tasks"]["drop_reasons"] == {"stage1_no_json": 1, "stage1_truncated": 1, "stage2_missing_section": 1}
    assert st["tasks"]["kept"] == 2
    assert st["solutions"]["drop_reasons"] == {"no_code_block": 2, "syntax_error": 2}
    drops = st["tests"]["drop_reasons"]
    assert drops["prompted_bad_item"] == 2 and drops["invalid_input"] == 2
    assert drops["generator_run_failed"] == 4 and drops["generator_broken"] == 1
    assert st["verify"]["kept"] == 2
    sols = read_records(cfg.synth.sft_parquet, SFTRow)
    assert len(sols) == 4  # 3 passing per task, minus exact duplicates (candidates 0 and 2 share code)
    assert st["export"]["sft"]["drop_reasons"]["duplicate_solution"] == 2
    rl = read_records(cfg.synth.rl_parquet, RLRow)
    by_style = {r.extra_info["style"]: r for r in rl}
    truth = json.loads(by_style["leetcode"].reward_model["ground_truth"])
    assert truth["kind"] == "call" and truth["fn_name"] == "countPairs"
    assert {"input": "[1, 2, 3]\n4", "output": "1", "weight": 1.0} in truth["tests"]
    assert by_style["leetcode"].extra_info["pass_rate"] == 0.75  # 3 of 4 valid candidates pass
    assert "<think>" in sols[0].response and sols[0].messages[-1]["role"] == "assistant"
    card = json.loads((Path(cfg.synth.output_dir) / "export" / "data_card.json").read_text())
    assert card["stages"]["tests"]["drop_reasons"]["generator_broken"] == 1
    assert card["styles"]["kept_tasks"] == {"codeforces": 1, "atcoder": 0, "leetcode": 1}


def test_rerun_repeats_no_llm_or_judge_work(synth_cfg):
    cfg, fake = synth_cfg
    first = run_stages(cfg)
    rl_first = read_records(cfg.synth.rl_parquet, RLRow)
    n_requests = len(fake.requests)
    again = run_stages(cfg)
    assert len(fake.requests) == n_requests  # nothing asked twice
    for stage in ("tasks", "solutions", "tests", "verify"):
        assert again["stages"][stage]["processed_units"] == 0
        assert again["stages"][stage]["kept"] == first["stages"][stage]["kept"]
    assert read_records(cfg.synth.rl_parquet, RLRow) == rl_first  # idempotent


def _stage_and_unit(req) -> tuple[str, str]:
    """Which stage and unit of work a request belongs to (the stage tests script answers per unit)."""
    m = req.meta
    if "subtree_idx" in m:
        return "tasks", f"subtree {m['subtree_idx']}"
    return ("solutions" if "teacher" in m else "tests"), m["task_id"][:7]


def test_llm_outage_is_not_journaled_and_a_rerun_retries_only_those_units(synth_cfg):
    """HTTP 503 after the client's retries: the stage errors, a rerun completes that unit and repeats nothing else."""
    cfg, fake = synth_cfg
    from xcoder.synth.llm_io import LLMFailure

    outage = {  # one request per stage fails once, each in a unit that is otherwise good
        ("tasks", "subtree 3"): lambda m: m["step"] == "stage2",
        ("solutions", "t000004"): lambda m: m["i"] == 1,
        ("tests", "t000003"): lambda m: m["what"] == "validator",
    }

    def flaky(req):
        hit = outage.get(_stage_and_unit(req))
        if hit is not None and hit(req.meta):
            outage.pop(_stage_and_unit(req))  # fails once; healthy afterwards
            return ChatResult(request=req, error="HTTP 503: Service Unavailable (retries exhausted)")
        return answer(req)

    fake.answer = flaky
    previous = None
    for stage, unit in [("tasks", "subtree 3"), ("solutions", "t000004"), ("tests", "t000003"), (None, None)]:
        before = len(fake.requests)
        if stage is None:
            final = run_stages(cfg)["stages"]
        else:
            with pytest.raises(LLMFailure,
                               match=rf"{stage}: 1 unit\(s\) hit LLM request errors.*HTTP 503.*rerun will retry"):
                run_stages(cfg)
            manifest = json.loads((Path(cfg.synth.output_dir) / stage / "manifest.json").read_text())
            units = manifest["subtrees" if stage == "tasks" else "tasks"]
            assert manifest["llm_error_retry_on_rerun"] == 1 and manifest["processed_units"] == units - 1
            assert "llm_error" not in json.dumps(manifest["drop_reasons"])  # not a drop
        asked = [_stage_and_unit(r) for r in fake.requests[before:]]
        if previous is not None:  # the stage that failed last run asks again for exactly its failed unit
            assert {u for s, u in asked if s == previous[0]} == {previous[1]}
            earlier = ["tasks", "solutions", "tests"][: ["tasks", "solutions", "tests"].index(previous[0])]
            assert not [a for a in asked if a[0] in earlier]  # finished stages repeat nothing
        previous = (stage, unit)
    assert final["tests"]["llm_error_retry_on_rerun"] == 0 and final["tests"]["processed_units"] == 1
    assert final["verify"]["kept"] == 2
    assert len(read_records(cfg.synth.sft_parquet, SFTRow)) == 4  # same data as a run that never saw an outage


def test_interrupted_stage_resumes_where_it_stopped(synth_cfg, monkeypatch):
    cfg, fake = synth_cfg
    from omegaconf import OmegaConf

    from xcoder.synth.verify import stage as verify_stage

    OmegaConf.update(cfg, "synth.verify.tasks_per_judge_batch", 1)
    real = verify_stage._run_batch
    calls = []

    def dying(*args, **kwargs):
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed after the first task was journaled
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_stage, "_run_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_stages(cfg)
    monkeypatch.setattr(verify_stage, "_run_batch", real)
    resumed = run_stages(cfg)["stages"]["verify"]
    assert resumed["resumed_units"] == 1 and resumed["processed_units"] == 1
    assert len(read_records(verify_stage.verify_parquet(cfg), Verification)) == 2
    assert len(read_records(cfg.synth.sft_parquet, SFTRow)) == 4


@pytest.mark.slow
def test_cluster_ray_fans_judge_work_out_with_the_same_result(synth_cfg, tmp_path):
    ray = pytest.importorskip("ray")
    cfg, _ = synth_cfg
    local = run_stages(cfg)
    cfg_ray = compose([*_overrides_of(cfg, tmp_path / "ray"), "cluster=ray"])
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        on_ray = run_stages(cfg_ray)
    finally:
        ray.shutdown()
    assert on_ray["stages"]["verify"]["kept"] == local["stages"]["verify"]["kept"] == 2
    assert read_records(cfg_ray.synth.rl_parquet, RLRow) == read_records(cfg.synth.rl_parquet, RLRow)


def _overrides_of(cfg, out):
    return ["experiment=demo", f"run.output_dir={out}",
            f"synth.features.subtrees_parquet={cfg.synth.features.subtrees_parquet}",
            "synth.stages=[tasks,solutions,tests,verify,export]",
            "synth.tasks.style_cycle=[codeforces,codeforces,codeforces,codeforces,leetcode]",
            "synth.solutions.teachers=[{name: t, model: null, n: 6}]", "synth.verify.golden.min_tests=4",
            "synth.tests.generator.seeds={small: 2, edge: 1, stress: 1}"]


def test_tasks_overlapping_a_benchmark_are_removed_and_counted(synth_cfg, tmp_path):
    cfg, _ = synth_cfg
    bench = tmp_path / "lcb.jsonl"
    bench.write_text(json.dumps({"question_content": CF_QUESTION}) + "\n")
    from omegaconf import OmegaConf

    OmegaConf.update(cfg, "synth.dedup.benchmarks", [str(bench)])
    OmegaConf.update(cfg, "synth.stages", ["tasks"])
    counts = run_stages(cfg)["stages"]["tasks"]
    assert counts["drop_reasons"]["benchmark_contaminated"] == 1 and counts["kept"] == 1


def test_sample_whose_vote_contradicts_the_statement_is_counted_and_can_reject(synth_cfg):
    cfg, _ = synth_cfg
    from omegaconf import OmegaConf

    from xcoder.records import Task, TestInput
    from xcoder.synth.verify.stage import known_outputs, sample_mismatches

    task = Task(task_id="t", subtree_idx=0, style="codeforces", question=CF_QUESTION, stage1="{}")
    inputs = [TestInput(test_id="a", task_id="t", input="3\n1 2 3\n", source="sample"),
              TestInput(test_id="b", task_id="t", input="1\n7\n", source="sample"),
              TestInput(test_id="c", task_id="t", input="1\n7\n", source="prompted")]
    known, unparsed = known_outputs(task, inputs)  # old sample rows carry no `expected`: the statement is read
    assert set(known) == {"a", "b"} and not unparsed
    tests = [{"test_id": "a", "input": "3\n1 2 3\n", "output": "6"}, {"test_id": "b", "input": "1\n7\n", "output": "8"},
             {"test_id": "c", "input": "1\n7\n", "output": "8"}]
    assert sample_mismatches("stdio", tests, known, "lcb") == 1
    assert OmegaConf.select(cfg, "synth.verify.reject_sample_mismatch") is False
