"""The judge's own failures surface as SE and heal; concurrent callers; memory under the limit."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from xcoder.judge import Judge, JudgeTest, Limits, Program, Verdict

APLUSB = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_supervisor_death_is_se_then_the_worker_restarts(tmp_path):
    with Judge(workers=1, cpp_cache_dir=tmp_path) as judge:
        worker = judge._warm.cores[0]["lean"]
        victim = worker.proc.pid
        killer = threading.Timer(0.5, lambda: os.killpg(victim, signal.SIGKILL))
        killer.start()
        (res,) = judge.run(Program("import time\ntime.sleep(5)\n"), [JudgeTest("", None)], limits=Limits(time_s=8))
        killer.join()
        assert res.verdict == Verdict.SE and "worker" in res.message
        (again,) = judge.run(Program(APLUSB), [JudgeTest("1 2\n", "3")])
        assert again.verdict == Verdict.AC
        assert worker.proc.pid != victim


def test_many_threads_share_one_judge(judge):
    def one(i: int):
        return judge.run(Program(APLUSB + f"# caller {i}\n"), [JudgeTest(f"{i} {j}\n", str(i + j)) for j in range(5)])

    with ThreadPoolExecutor(6) as pool:
        batches = list(pool.map(one, range(12)))
    for i, batch in enumerate(batches):
        assert [r.stdout for r in batch] == [f"{i + j}\n" for j in range(5)]


def test_memory_below_the_limit_is_fine(judge):
    code = "x = bytearray(150 << 20)\nx[::4096] = b'1' * len(x[::4096])\nprint(len(x) >> 20)\n"
    (res,) = judge.run(Program(code), [JudgeTest("", "150")], limits=Limits(time_s=10, memory_mb=256))
    assert res.verdict == Verdict.AC, res
    assert 150 <= res.memory_mb < 256


def test_limits_apply_per_call(judge):
    code = "x = bytearray(200 << 20)\nx[::4096] = b'1' * len(x[::4096])\nprint('ok')\n"
    (small,) = judge.run(Program(code), [JudgeTest("", "ok")], limits=Limits(time_s=10, memory_mb=128))
    (large,) = judge.run(Program(code), [JudgeTest("", "ok")], limits=Limits(time_s=10, memory_mb=512))
    assert (small.verdict, large.verdict) == (Verdict.MLE, Verdict.AC)


def test_wall_time_is_measured_per_test(judge):
    start = time.monotonic()
    (res,) = judge.run(Program("import time\ntime.sleep(0.3)\nprint(1)"), [JudgeTest("", "1")])
    assert res.verdict == Verdict.AC and 0.3 <= res.time_s < time.monotonic() - start + 0.01
