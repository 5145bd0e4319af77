"""The warm pool's dispatcher: batches over workers, failures mid-batch, stop-at-first-failure
chains, profiles sharing a core, and callers that never hang."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from xcoder.judge import Judge, JudgeJob, JudgeTest, Limits, Program, Verdict
from xcoder.judge import pool as pool_mod
from xcoder.judge.faults import _supervisor_pid

TAGGED = "import time, sys\ntag, delay = input().split()\ntime.sleep(float(delay))\nprint(tag)\n"


def test_a_dead_worker_fails_only_its_running_test_and_its_queue_runs_elsewhere(tmp_path):
    """The supervisor dies while it runs one test and holds others queued: the running one is SE
    (the judge failed, not the program), the queued ones never started and run after the restart."""
    with Judge(workers=1, cpp_cache_dir=tmp_path) as judge:
        worker = judge._warm.cores[0]["lean"]
        victim = worker.proc.pid
        tests = [JudgeTest("slow 5\n", "slow")] + [JudgeTest(f"t{i} 0\n", f"t{i}") for i in range(6)]
        killer = threading.Timer(0.5, lambda: os.killpg(victim, signal.SIGKILL))
        killer.start()
        results = judge.run(Program(TAGGED), tests, limits=Limits(time_s=8))
        killer.join()
        assert results[0].verdict == Verdict.SE and "died" in results[0].message, results[0]
        assert [r.verdict for r in results[1:]] == [Verdict.AC] * 6, results
        assert [r.stdout for r in results[1:]] == [f"t{i}\n" for i in range(6)]
        assert worker.proc.pid != victim


def test_a_stuck_supervisor_is_killed_after_the_wall_limit_and_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_mod, "HOST_GRACE_S", 0.5)
    with Judge(workers=1, cpp_cache_dir=tmp_path) as judge:
        worker = judge._warm.cores[0]["lean"]
        supervisor = _supervisor_pid(worker.proc.pid)
        freezer = threading.Timer(0.2, lambda: os.kill(supervisor, signal.SIGSTOP))
        freezer.start()
        (res,) = judge.run(Program(TAGGED), [JudgeTest("x 1\n", "x")], limits=Limits(time_s=0.5))
        freezer.join()
        assert res.verdict == Verdict.SE and "no result within" in res.message, res
        (again,) = judge.run(Program(TAGGED), [JudgeTest("y 0\n", "y")])
        assert again.verdict == Verdict.AC, again


def test_stop_at_first_failure_chains_run_together_and_stop_exactly(judge):
    """Many LCB-style jobs at once: each one's results end at its first failure, the tests after
    it never run (their side effect, a line in a shared file, never appears)."""
    code = ("import sys\nn, verdict = input().split()\nprint(n if verdict == 'ok' else 'no')\n")
    plans = [["ok"] * 5, ["ok", "bad", "ok"], ["bad", "ok"], ["ok", "ok", "ok", "bad"], ["ok"]] * 4
    jobs = [JudgeJob(Program(code + f"# job {j}\n"), [JudgeTest(f"{t} {v}\n", str(t)) for t, v in enumerate(plan)],
                     stop_on_first_failure=True) for j, plan in enumerate(plans)]
    for plan, results in zip(plans, judge.run_many(jobs)):
        expected = plan.index("bad") + 1 if "bad" in plan else len(plan)
        assert len(results) == expected, (plan, results)
        assert [r.verdict for r in results] == [Verdict.AC] * (expected - 1) + [
            Verdict.WA if "bad" in plan else Verdict.AC]


def test_stdio_and_call_jobs_interleave_over_both_profiles(judge):
    """Lean (stdio) and full (call) sandboxes share each core; mixed batches keep every result
    with its own job."""
    jobs = []
    for j in range(10):
        if j % 2:
            jobs.append(JudgeJob(Program(f"def f(x):\n    return x + {j}\n"),
                                 [JudgeTest(f"{t}\n", str(t + j)) for t in range(4)], kind="call", fn_name="f"))
        else:
            jobs.append(JudgeJob(Program(f"print(int(input()) + {j})\n"),
                                 [JudgeTest(f"{t}\n", str(t + j)) for t in range(4)]))
    for j, results in enumerate(judge.run_many(jobs)):
        assert [r.verdict for r in results] == [Verdict.AC] * 4, (j, results)


def test_closing_the_judge_under_a_caller_fails_its_tests_instead_of_hanging(tmp_path):
    judge = Judge(workers=1, cpp_cache_dir=tmp_path)
    out: list = []
    caller = threading.Thread(target=lambda: out.append(
        judge.run(Program(TAGGED), [JudgeTest(f"t{i} 0.2\n", f"t{i}") for i in range(20)], limits=Limits(time_s=5))))
    caller.start()
    time.sleep(0.5)
    judge.close()
    caller.join(timeout=30)
    assert not caller.is_alive()
    (results,) = out
    assert len(results) == 20
    assert any(r.verdict == Verdict.AC for r in results) and any(r.verdict == Verdict.SE for r in results), results
    with pytest.raises(RuntimeError):
        judge.run(Program(TAGGED), [JudgeTest("x 0\n", "x")])


def test_many_short_tests_keep_a_deep_queue_in_each_worker(judge):
    """The host keeps several tests queued per supervisor while tests are short (the point of
    the batch protocol), and results still come back in test order."""
    tests = [JudgeTest(f"{i} 0\n", str(i)) for i in range(300)]
    depth = []
    sample = threading.Event()

    def watch():
        while not sample.is_set():
            depth.append(max(len(w.outstanding) for core in judge._warm.cores for w in core.values()))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = judge.run(Program(TAGGED), tests)
    finally:
        sample.set()
        watcher.join()
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(300)]
    assert max(depth) > 2, depth


def test_tests_queued_behind_a_long_test_move_to_a_free_core(judge):
    """Work stealing: two long tests land in one worker's queue (they come first in the batch);
    once the first has run long, the second is handed back and runs on the other core, beside it."""
    code = ("import time, sys\nkind = input()\nt0 = time.monotonic()\n"
            "if kind == 'long':\n    time.sleep(1.5)\nprint(kind, t0)\n")
    tests = [JudgeTest("long\n", None), JudgeTest("long\n", None)] + [JudgeTest("short\n", None)] * 40
    results = judge.run(Program(code), tests, limits=Limits(time_s=10))
    assert all(r.verdict == Verdict.AC for r in results), results
    first, second = (float(r.stdout.split()[1]) for r in results[:2])
    assert abs(second - first) < 1.0, (first, second)  # started together, not one after the other


def test_a_supervisor_that_loaded_many_programs_is_replaced_when_idle(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_mod, "RECYCLE_AFTER_PROGRAMS", 5)
    with Judge(workers=1, cpp_cache_dir=tmp_path) as judge:
        worker = judge._warm.cores[0]["lean"]
        first = worker.proc.pid
        jobs = [JudgeJob(Program(f"print({i} + int(input()))\n"), [JudgeTest("1\n", str(i + 1))]) for i in range(12)]
        for _ in range(2):
            assert [r[0].verdict for r in judge.run_many(jobs)] == [Verdict.AC] * 12
        deadline = time.monotonic() + 30
        while worker.proc is None and time.monotonic() < deadline:  # it may be restarting right now
            time.sleep(0.05)
        assert worker.proc is not None and worker.proc.pid != first


def _failing_starts(monkeypatch, profile: str, times: int):
    """WarmWorker.start fails `times` times for `profile` (every time when times < 0)."""
    from xcoder.judge import warm

    real = warm.WarmWorker.start
    left = [times]

    def start(self):
        if self.profile == profile and left[0] != 0:
            left[0] -= 1
            raise warm.WorkerDied(f"injected start failure ({profile})")
        return real(self)

    monkeypatch.setattr(warm.WarmWorker, "start", start)


def test_a_sandbox_that_fails_to_start_is_retried(tmp_path, monkeypatch):
    with Judge(workers=1, cpp_cache_dir=tmp_path) as judge:
        _failing_starts(monkeypatch, "full", 1)
        (res,) = judge.run(Program("def f(x):\n    return x + 1\n"), [JudgeTest("1", "2")], kind="call", fn_name="f")
        assert res.verdict == Verdict.AC, res
        (lean,) = judge.run(Program("print(input())"), [JudgeTest("x\n", "x")])
        assert lean.verdict == Verdict.AC, lean


def test_a_profile_that_cannot_start_fails_its_tests_and_the_other_profile_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_mod, "NO_WORKER_TIMEOUT_S", 1.5)
    with Judge(workers=1, cpp_cache_dir=tmp_path) as judge:
        _failing_starts(monkeypatch, "full", -1)
        jobs = [JudgeJob(Program("def f(x):\n    return x\n"), [JudgeTest("1", "1")] * 2, kind="call", fn_name="f"),
                JudgeJob(Program("print(input())"), [JudgeTest("y\n", "y")])]
        call, lean = judge.run_many(jobs)
        assert [r.verdict for r in call] == [Verdict.SE] * 2 and "could be started" in call[0].message, call
        assert lean[0].verdict == Verdict.AC, lean
