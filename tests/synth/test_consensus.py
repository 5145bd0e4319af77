"""The consensus rule and grading-equal output keys: what verification keeps and why."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from xcoder.judge.compare import compare
from xcoder.judge.verdicts import _json_equal as lcb_call_equal
from xcoder.synth.verify.core import (
    ConsensusConfig,
    GoldenConfig,
    VoteConfig,
    normalize_output,
    output_key,
    verify_outputs,
)

VC = VoteConfig()
GC = GoldenConfig(min_tests=3)
CC = ConsensusConfig()


def _tests(m, expected=None):
    expected = expected or {}
    return [{"test_id": f"t{j}", "input": f"{j}\n", "tag": "plain", "source": "sample" if j in expected else "prompted",
             **({"expected": expected[j]} if j in expected else {})} for j in range(m)]


def _verify(outputs, tests, cfg=CC, kind="stdio"):
    return verify_outputs(task_id="T", kind=kind, candidate_ids=[f"c{i}" for i in range(len(outputs))], tests=tests,
                          outputs=outputs, vote_cfg=VC, golden_cfg=GC, consensus_cfg=cfg)


def test_call_keys_follow_python_equality_as_grading_does():
    for a, b in [("1", "1.0"), ("true", "1"), ("[1, 2.0]", "[1.0, 2]"), ('{"a": 1}', '{"a": 1.0}')]:
        assert output_key(normalize_output(a, "call"), "call") == output_key(normalize_output(b, "call"), "call")
        assert lcb_call_equal(a, b)
    assert output_key(normalize_output("1.5", "call"), "call") != output_key(normalize_output("1", "call"), "call")


_token = st.one_of(st.integers(-1000, 1000).map(str), st.sampled_from(["1.0", "1.00", "0.5", ".5", "1e2", "100", "abc",
                                                                       "YES", "-0", "0", "1_0", "NaN", "inf"]))
_line = st.lists(_token, max_size=3).map(" ".join)
_text = st.lists(_line, min_size=1, max_size=3).map("\n".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_text, _text)
def test_stdio_keys_are_equal_exactly_when_lcb_grading_says_equal(a, b):
    key_a = output_key(normalize_output(a, "stdio", "lcb"), "stdio", "lcb")
    key_b = output_key(normalize_output(b, "stdio", "lcb"), "stdio", "lcb")
    if "NaN" not in a + b:  # Decimal NaN is never equal to itself; its key is (documented)
        assert (key_a == key_b) == compare("lcb", a, b)


def test_consensus_keeps_a_clear_majority_and_labels_with_the_golden():
    right = [str(j * 2) for j in range(6)]
    wrong = [str(j * 2 + 1) for j in range(6)]
    res = _verify([wrong, right, right, right], _tests(6))
    assert res.status == "kept" and res.golden_index == 1
    assert [t["output"] for t in res.tests] == right
    assert res.evidence["cluster"] == 3 and res.evidence["voters"] == 4 and res.evidence["cluster_sizes"] == [3, 1]
    assert res.pass_matrix["c0"] == [False] * 6 and all(res.pass_matrix["c1"])


def test_candidates_contradicting_a_statement_sample_never_vote():
    # a correlated wrong majority (3 of 5) that gets the statement's own example wrong
    right = ["0", "2", "4", "6", "8", "10"]
    wrong = ["1", "2", "5", "6", "9", "10"]
    outputs = [wrong, wrong, wrong, right, right]
    plain = _verify(outputs, _tests(6), ConsensusConfig(min_cluster_share=0.4, min_margin=1.0))
    assert plain.status == "kept" and [t["output"] for t in plain.tests] == wrong  # without the anchor: wrong
    anchored = _verify(outputs, _tests(6, expected={0: "0"}), ConsensusConfig(min_cluster_share=0.4, min_margin=1.0))
    assert anchored.status == "kept" and [t["output"] for t in anchored.tests] == right
    assert anchored.evidence["sample_consistent"] == 2 and anchored.evidence["golden_passes_samples"] is True


def test_contested_small_and_partly_labelled_consensus_is_rejected():
    a = [str(j) for j in range(6)]
    b = [str(-j - 1) for j in range(6)]
    assert _verify([a, a, b, b], _tests(6), ConsensusConfig(min_cluster_share=0.25)).reason == "contested"
    c = [str(j + 100) for j in range(6)]
    d = [str(j + 200) for j in range(6)]
    assert _verify([a, a, b, c, d, d], _tests(6)).reason == "low_agreement"  # 2 of 6 < half of n
    assert _verify([a, b, c, d], _tests(6), ConsensusConfig(min_cluster_share=0.0)).reason == "low_support"
    holey = a[:3] + [None] * 3
    assert _verify([holey, holey, holey], _tests(6)).reason == "partly_labelled"
    assert _verify([a, b], _tests(6, expected={0: "999"})).reason == "samples_contradicted"


def test_paper_preset_votes_with_grading_equality():
    ones = ["1", "2", "3", "4"]
    floats = ["1.0", "2.0", "3.0", "4.0"]
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["a", "b", "c"], tests=_tests(4),
                         outputs=[ones, floats, ["9", "9", "9", "8"]], vote_cfg=VC, golden_cfg=GC)
    assert res.status == "kept" and all(res.pass_matrix["a"]) and all(res.pass_matrix["b"])
    assert json.dumps(res.votes[0]["counts"]) == "[2, 1]"


def _import_cfg(tmp_path, lines):
    from xcoder.config import compose

    src = tmp_path / "problems.jsonl"
    src.write_text("\n".join(lines) + "\n")
    return compose(["experiment=demo", f"run.output_dir={tmp_path}/run", f"synth.import.path={src}",
                    "synth.stages=[import,verify,export]", "synth.verify.golden.min_tests=3"])


ADD = "a, b = map(int, input().split())\nprint(a + b)"
ADD2 = "import sys\nprint(sum(map(int, sys.stdin.read().split())))"
MUL = "a, b = map(int, input().split())\nprint(a * b)"


def test_import_round_trips_jsonl_through_verify_and_foreign_tasks_never_crash_it(tmp_path):
    from pathlib import Path

    from xcoder.records import RLRow, Solution, Task, TestInput, Verification, read_records
    from xcoder.synth.solutions.stage import solutions_parquet
    from xcoder.synth.stage import run_stages
    from xcoder.synth.tasks.stage import tasks_parquet
    from xcoder.synth.testgen.stage import tests_parquet
    from xcoder.synth.verify.stage import verify_parquet

    tests = [{"input": "2 3\n", "output": "5"}] + [{"input": f"{a} {a + 3}\n"} for a in range(1, 6)]
    lines = [
        # a good task with a known output that rules out the multiplier
        json.dumps({"task_id": "add", "statement": "Print a+b.", "tests": tests, "candidates": [ADD, MUL, ADD2, ADD]}),
        # a statement in no known shape, with its sample marked as such but no output: verified without it
        json.dumps({"task_id": "odd", "statement": "<<free text, no sections>>",
                    "tests": [{"input": "1 1\n", "source": "sample"}] + tests[1:], "candidates": [ADD, ADD2]}),
        # every candidate crashes: a counted rejection, not a crash of the stage
        json.dumps({"task_id": "crash", "statement": "x", "tests": tests, "candidates": ["raise SystemExit(3)"] * 3}),
        "not json at all",
        json.dumps({"task_id": "nocands", "statement": "x", "tests": tests, "candidates": []}),
    ]
    cfg = _import_cfg(tmp_path, lines)
    manifest = run_stages(cfg)["stages"]
    assert manifest["import"]["kept"] == 3
    assert manifest["import"]["drop_reasons"] == {"not_json": 1, "missing_candidates": 1}
    assert len(read_records(tasks_parquet(cfg), Task)) == 3 and len(read_records(solutions_parquet(cfg), Solution)) == 9
    tins = read_records(tests_parquet(cfg), TestInput)
    assert [t.expected for t in tins if t.task_id == "add"][0] == "5"
    vers = {v.task_id: v for v in read_records(verify_parquet(cfg), Verification)}
    assert set(vers) == {"add", "odd", "crash"}  # nothing lost
    assert vers["add"].status == "kept" and vers["add"].golden_solution_id == "add-c0"
    assert json.loads(vers["add"].pass_matrix)["add-c1"] == [False] * 6  # MUL contradicts the sample: never voted
    assert vers["odd"].status == "kept" and json.loads(vers["odd"].evidence)["samples_known"] == 0
    assert vers["crash"].status == "rejected" and vers["crash"].reason == "all_candidates_failed"
    v = manifest["verify"]
    assert v["kept"] == 2 and v["drop_reasons"] == {"all_candidates_failed": 1}
    assert v["test_drop_reasons"].get("statement_unparsed") == 1
    # the evidence travels to the RL parquet and the data card
    rl = {r.extra_info["task_id"]: r.extra_info for r in read_records(cfg.synth.rl_parquet, RLRow)}
    assert set(rl) == {"add", "odd"}
    assert json.loads(rl["add"]["verification"])["cluster"] == 3 and 0.5 < rl["add"]["confidence"] <= 1.0
    card = Path(manifest["export"]["data_card"]).read_text()
    assert "synth.verify.preset=consensus" in card
