"""Dual verification logic: voting, ties, thresholds, golden hold-out and sanity filters."""

from __future__ import annotations

from xcoder.synth.verify.core import GoldenConfig, VoteConfig, normalize_output, split_halves, verify_outputs, vote_test

VC = VoteConfig(min_support=2, min_agreement=0.5)


def test_failed_runs_do_not_vote():
    v = vote_test(["1", None, None, "1", "2"], VC, "k")
    assert v.label == "1" and v.successes == 3 and v.support == 2 and v.counts == [2, 1]


def test_no_successful_run_gives_no_label():
    assert vote_test([None, None], VC, "k").reason == "no_success"


def test_support_and_agreement_thresholds():
    assert vote_test(["1", "2", "3"], VC, "k").reason == "low_support"
    v = vote_test(["1", "1", "2", "3", "4"], VoteConfig(min_support=2, min_agreement=0.5), "k")
    assert v.label is None and v.reason == "low_agreement"


def test_seeded_tie_break_is_deterministic_and_recorded():
    outs = ["a", "a", "b", "b"]
    first = vote_test(outs, VC, "task:test1")
    again = vote_test(list(reversed(outs)), VC, "task:test1")
    assert first.has_tie and first.label == again.label
    assert vote_test(outs, VoteConfig(tie_break="drop"), "k").reason == "tie"
    assert vote_test(outs, VoteConfig(tie_break="lexical"), "k").label == "a"


def test_normalisation_per_kind():
    assert normalize_output("1 2  \r\n3\n\n", "stdio") == "1 2\n3"
    assert normalize_output("[1, 2]", "call") == normalize_output("[1,2]", "call")
    assert normalize_output("not json", "call") is None


def _tests(n, tags=None):
    return [{"test_id": f"t{j}", "input": f"{j}\n", "tag": (tags or ["plain"] * n)[j]} for j in range(n)]


def test_golden_is_selected_on_one_half_and_validated_on_the_other():
    n = 10
    right = [str(j * 2) for j in range(n)]
    wrong = [str(j * 2 + (j % 2)) for j in range(n)]  # wrong on odd inputs
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["w", "a", "b", "c"], tests=_tests(n),
                         outputs=[wrong, right, right, right], vote_cfg=VC, golden_cfg=GoldenConfig(min_tests=5))
    assert res.status == "kept" and res.golden_index == 1
    assert res.golden_holdout_pass == 1.0 and len(res.tests) == n
    assert res.pass_matrix["w"].count(False) == 5 and all(res.pass_matrix["a"])
    halves = {t["half"] for t in res.tests}
    assert halves == {"select", "holdout"}


def test_golden_that_fails_the_holdout_rejects_the_task():
    n = 10
    tests = _tests(n)
    select = split_halves([t["test_id"] for t in tests], ["plain"] * n, 0.5, 42)
    # two candidates agree on everything; labels come from them. A third is the only one right on
    # the hold-out half, but never wins the vote, so golden = candidate 0 fails nothing -> craft the
    # inverse: the majority disagrees with itself on the hold-out half.
    a = [str(j) for j in range(n)]
    b = [str(j) if select[j] else str(-j - 1) for j in range(n)]
    c = [str(j) if select[j] else str(-j - 100) for j in range(n)]
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["a", "b", "c"], tests=tests, outputs=[a, b, c],
                         vote_cfg=VoteConfig(min_support=1, min_agreement=0.0, tie_break="lexical"),
                         golden_cfg=GoldenConfig(min_tests=3, min_holdout_pass=0.9))
    # hold-out labels are the lexically smallest of three different outputs: golden (a) cannot match all
    assert res.status == "rejected" and res.reason == "golden_failed_holdout"


def test_edge_and_stress_tests_weigh_more():
    tests = _tests(6, ["plain", "plain", "edge", "edge", "stress", "stress"])
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["a", "b"], tests=tests,
                         outputs=[[str(j) for j in range(6)]] * 2, vote_cfg=VC, golden_cfg=GoldenConfig(min_tests=3))
    weights = {t["tag"]: t["weight"] for t in res.tests}
    assert weights == {"plain": 1.0, "edge": 2.0, "stress": 2.0}


def test_empty_call_outputs_reject_the_task():
    res = verify_outputs(task_id="T", kind="call", candidate_ids=["a", "b"], tests=_tests(6),
                         outputs=[["null"] * 4 + ["1", "2"]] * 2, vote_cfg=VC, golden_cfg=GoldenConfig(min_tests=2))
    assert res.status == "rejected" and res.reason == "empty_outputs"


def test_constant_outputs_reject_the_task():
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["a", "b"], tests=_tests(6),
                         outputs=[["YES"] * 6] * 2, vote_cfg=VC, golden_cfg=GoldenConfig(min_tests=3))
    assert res.reason == "constant_output"


def test_too_few_surviving_tests_and_all_failed():
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["a", "b"], tests=_tests(3),
                         outputs=[["1", "2", "3"]] * 2, vote_cfg=VC, golden_cfg=GoldenConfig(min_tests=5))
    assert res.reason == "too_few_tests"
    res = verify_outputs(task_id="T", kind="stdio", candidate_ids=["a"], tests=_tests(3),
                         outputs=[[None] * 3], vote_cfg=VC, golden_cfg=GoldenConfig())
    assert res.reason == "all_candidates_failed"


def test_halves_cover_every_tag():
    ids = [f"t{i}" for i in range(8)]
    tags = ["edge"] * 4 + ["plain"] * 4
    sel = split_halves(ids, tags, 0.5, 1)
    assert sum(sel) == 4 and any(s for s, t in zip(sel, tags) if t == "edge")
    assert sel == split_halves(ids, tags, 0.5, 1)
