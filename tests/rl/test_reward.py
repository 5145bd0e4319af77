"""The reward: paper scoring, per-(task, epoch) test subsets, SE handling, id-keyed batches."""

from __future__ import annotations

import dataclasses
import json
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcoder.judge import TestResult, Verdict
from xcoder.rl.ground_truth import GroundTruthError, parse_ground_truth, select_tests
from xcoder.rl.reward import CodeReward, JudgeSystemError, RewardItem, RewardSettings, compute_score

from .helpers import SUM_ANSWER, stdio_truth, sum_tests

TRUTH = stdio_truth(sum_tests(15))


class FakeJudge:
    """Contract-true stand-in (results in job order, tests in input order) whose *execution* order
    is shuffled, and whose verdict for a test is a pure function of (program, test): `print(V)`
    programs are AC iff V equals the expected output; `raise` is RE; `loop` is TLE; `se` is SE
    on the first `se_attempts` tries of each test."""

    def __init__(self, seed: int = 0, se_attempts: int = 0) -> None:
        self.rng = random.Random(seed)
        self.se_attempts = se_attempts
        self.tries: dict[tuple[str, str], int] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def _verdict(self, code: str, test) -> Verdict:
        key = (code, test.input)
        self.tries[key] = self.tries.get(key, 0) + 1
        if "se" in code and self.tries[key] <= self.se_attempts:
            return Verdict.SE
        if "loop" in code:
            return Verdict.TLE
        if "raise" in code:
            return Verdict.RE
        printed = code.split("print(")[-1].split(")")[0]
        return Verdict.AC if printed == (test.output or "") else Verdict.WA

    def run_many(self, jobs):
        with self.lock:
            self.calls += 1
        work = [(j, i) for j, job in enumerate(jobs) for i in range(len(job.tests))]
        self.rng.shuffle(work)  # execution order is arbitrary; the returned order must not be
        out: list[list] = [[None] * len(job.tests) for job in jobs]
        for j, i in work:
            out[j][i] = TestResult(index=i, verdict=self._verdict(jobs[j].program.code, jobs[j].tests[i]))
        return out

    def close(self):
        pass


def _resp(body: str) -> str:
    return f"<think>hmm</think>\n```python\n{body}\n```"


def test_paper_scoring_with_the_real_judge():
    reward = CodeReward(RewardSettings.defaults(time_s=2, judge_workers=2))
    try:
        out = reward.score_batch([
            RewardItem("good", SUM_ANSWER, TRUTH), RewardItem("wrong", _resp("print(3)"), TRUTH),
            RewardItem("crash", _resp("raise SystemExit(1)"), TRUTH), RewardItem("none", "no code", TRUTH),
        ])
    finally:
        reward.close()
    assert out["good"].score == 5.0 and out["good"].sampled == 10 and out["good"].n_tests == 15
    assert out["wrong"].score == pytest.approx(5.0 * out["wrong"].passed / 10) and out["wrong"].verdicts.get("WA",
                                                                                                             0) >= 9
    assert out["crash"].score == 0.0 and out["crash"].verdicts == {"RE": 10}
    assert out["none"].score == -2.0 and out["none"].format_failure == "no_code"


def test_binary_mode_and_configurable_penalty():
    reward = CodeReward(RewardSettings.defaults(mode="binary", format_penalty=-1.0), client=FakeJudge())
    truth = stdio_truth([{"input": "a", "output": "6"}, {"input": "b", "output": "7"}])
    assert reward.score_one(_resp("print(6)"), truth).score == 0.0  # 1 of 2
    assert reward.score_one(_resp("def (:"), truth).score == -1.0
    truth_all = stdio_truth([{"input": "a", "output": "6"}])
    assert reward.score_one(_resp("print(6)"), truth_all).score == 5.0


def test_test_subset_is_deterministic_per_task_and_epoch_and_shared_by_rollouts():
    a = select_tests(50, 10, "task-1", 0, 42)
    assert a == select_tests(50, 10, "task-1", 0, 42) and len(a) == 10 == len(set(a))
    assert a != select_tests(50, 10, "task-1", 1, 42)  # a new epoch draws a new subset
    assert a != select_tests(50, 10, "task-2", 0, 42)
    assert select_tests(7, 10, "t", 0, 42) == list(range(7))
    seen = []

    class Spy(FakeJudge):
        def run_many(self, jobs):
            seen.extend(tuple(t.input for t in job.tests) for job in jobs)
            return super().run_many(jobs)

    reward = CodeReward(RewardSettings.defaults(), client=Spy())
    reward.score_batch([RewardItem(f"r{i}", _resp(f"print({i})"), TRUTH, {"task_id": "T"}) for i in range(8)])
    assert len(seen) == 8 and len(set(seen)) == 1  # all 8 rollouts of the prompt faced the same tests


def test_system_errors_are_retried_then_excluded_then_surfaced():
    # transient SE: retried, then graded normally
    reward = CodeReward(RewardSettings.defaults(system_error_retries=2), client=FakeJudge(se_attempts=1))
    r = reward.score_one(_resp("se; print(6)"), stdio_truth([{"input": "x", "output": "6"}] * 1))
    assert r.score == 5.0 and not r.judge_error and reward.stats["system_error_retries"] == 1
    # persistent SE: distinct diagnostic, never a silent WA-like 0
    reward = CodeReward(RewardSettings.defaults(system_error_retries=1, max_system_error_rate=1.0),
                        client=FakeJudge(se_attempts=99))
    r = reward.score_one(_resp("se; print(6)"), stdio_truth([{"input": "x", "output": "6"}]))
    assert r.judge_error and r.graded == 0 and r.verdicts == {"SE": 1}
    assert reward.stats["judge_error_responses"] == 1
    assert compute_score  # the verl dict carries it as judge_error=1 (checked below)
    # a broken judge stops training
    reward = CodeReward(RewardSettings.defaults(system_error_retries=0, max_system_error_rate=0.05),
                        client=FakeJudge(se_attempts=99))
    with pytest.raises(JudgeSystemError, match="judge is broken"):
        reward.score_batch([RewardItem(str(i), _resp(f"se; print({i})"), TRUTH) for i in range(10)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ac", "wa", "tle", "re", "se", "nocode", "syntax"]), min_size=1, max_size=40),
       st.integers(0, 10_000), st.booleans())
def test_batch_results_are_keyed_by_response_id_never_misassigned(kinds, seed, abort_after_tle):
    """Property: whatever the mix and the execution order, each response's score equals the
    score it gets when graded alone (upstream misassigned ~25% by position)."""
    bodies = {"ac": "print({v})", "wa": "print(-1)", "tle": "loop; print({v})", "re": "raise; print({v})",
              "se": "se; print({v})", "nocode": None, "syntax": "def (:"}
    truth = lambda v: stdio_truth([{"input": str(i), "output": str(v)} for i in range(3)])  # noqa: E731
    items = []
    for n, kind in enumerate(kinds):
        v = 100 + n
        body = bodies[kind]
        text = "no code here" if body is None else _resp(body.format(v=v))
        items.append(RewardItem(f"id-{n}", text, truth(v), {"task_id": f"t{n}"}))
    rng = random.Random(seed)
    shuffled = items[:]
    rng.shuffle(shuffled)
    s = RewardSettings.defaults(system_error_retries=1, max_system_error_rate=1.0, abort_after_tle=abort_after_tle)
    batch = CodeReward(s, client=FakeJudge(seed, se_attempts=1 if seed % 2 else 5)).score_batch(shuffled)
    alone_judge = FakeJudge(seed + 1, se_attempts=1 if seed % 2 else 5)
    for it in items:
        alone = CodeReward(s, client=alone_judge).score_batch([dataclasses.replace(it, response_id="x")])["x"]
        assert batch[it.response_id].score == alone.score, it
        assert batch[it.response_id].judge_error == alone.judge_error


def test_duplicate_ids_and_bad_ground_truth_are_errors():
    reward = CodeReward(RewardSettings.defaults(), client=FakeJudge())
    with pytest.raises(ValueError, match="duplicate response ids"):
        reward.score_batch([RewardItem("a", "x", TRUTH), RewardItem("a", "y", TRUTH)])
    with pytest.raises(GroundTruthError, match="no tests"):
        reward.score_one(SUM_ANSWER, json.dumps({"kind": "stdio", "tests": []}))


def test_ground_truth_formats_ours_verl_and_multiply_encoded():
    ours = parse_ground_truth(json.dumps({"kind": "call", "fn_name": "f", "tests": [{"input": "1\n2", "output": "3"}]}))
    assert ours.kind == "call" and ours.fn_name == "f" and ours.tests[0].input == "1\n2"
    verl = parse_ground_truth(json.dumps(json.dumps({"inputs": [[1, [2, 3]]], "outputs": [[5]], "fn_name": "g"})))
    assert verl.kind == "call" and verl.tests[0].input == "1\n[2, 3]" and verl.tests[0].output == "[5]"
    asserts = parse_ground_truth({"assert_case": ["assert f(1) == 2"]})
    assert asserts.kind == "assert" and asserts.tests[0].code == "assert f(1) == 2"
    with pytest.raises(GroundTruthError, match="call' needs fn_name"):
        parse_ground_truth(json.dumps({"kind": "call", "tests": [{"input": "1", "output": "1"}]}))


def test_verl_entry_point_returns_a_fixed_numeric_key_set():
    kwargs = dict(judge_workers=1, time_s=2)
    good = compute_score("xcoder_synth", SUM_ANSWER, TRUTH, {"task_id": "s"}, **kwargs)
    bad = compute_score("xcoder_synth", "nothing", TRUTH, {"task_id": "s"}, **kwargs)
    assert good["score"] == 5.0 and bad["score"] == -2.0
    assert set(good) == set(bad) and all(isinstance(v, float) for v in good.values())
    assert bad["fmt_no_code"] == 1.0 and good["verdict_AC"] == 10.0 and good["judge_error"] == 0.0


def test_abort_after_tle_runs_one_test_of_a_looping_response_and_is_opt_in():
    ran = []

    class Spy(FakeJudge):
        def run_many(self, jobs):
            ran.extend((job.program.code, len(job.tests)) for job in jobs)
            return super().run_many(jobs)

    items = [RewardItem("loop", _resp("loop; print(6)"), TRUTH), RewardItem("wa", _resp("print(6)"), TRUTH)]
    reward = CodeReward(RewardSettings.defaults(abort_after_tle=True), client=Spy())
    out = reward.score_batch(items)
    assert out["loop"].score == 0.0 and out["loop"].verdicts == {"TLE": 10} and out["loop"].graded == 10
    assert sum(n for code, n in ran if "loop" in code) == 1  # 1 test executed instead of 10
    assert sum(n for code, n in ran if "loop" not in code) == 10 and reward.stats["tle_aborted_tests"] == 9
    assert out["wa"].score == CodeReward(RewardSettings.defaults(), client=FakeJudge()).score_batch(items)["wa"].score
    assert RewardSettings.defaults().abort_after_tle is False  # the paper rule runs every test


def test_short_retry_answer_from_the_judge_is_a_system_error_not_a_silent_drop():
    """The SE-retry pass checks result counts like the first pass (a short list would zip away tests)."""

    class ShortRetry(FakeJudge):
        def run_many(self, jobs):
            out = super().run_many(jobs)
            return out if self.calls == 1 else [res[:-1] for res in out]

    reward = CodeReward(RewardSettings.defaults(system_error_retries=1), client=ShortRetry(se_attempts=1))
    with pytest.raises(JudgeSystemError, match="retried tests"):
        reward.score_one(_resp("se; print(6)"), stdio_truth([{"input": "x", "output": "6"}] * 2))

    class MissingJob(FakeJudge):
        def run_many(self, jobs):
            out = super().run_many(jobs)
            return out if self.calls == 1 else out[:-1]

    reward = CodeReward(RewardSettings.defaults(system_error_retries=1), client=MissingJob(se_attempts=1))
    with pytest.raises(JudgeSystemError, match="retried jobs"):
        reward.score_one(_resp("se; print(6)"), stdio_truth([{"input": "x", "output": "6"}]))
