"""`xcoder judge bench`: our judge vs the naive baseline, same machine, same run.

Baseline = what upstream does: a fresh `python prog.py` subprocess per test (no sandbox), run
on a thread pool as wide as ours. Workloads: (a) many tiny A+B tests, (b) a CPU-heavy program,
(c) a program printing 10 MB. Ratios are what to compare across machines: absolute numbers move
with machine load (the CPU may be shared).

The fork floor is the ceiling of any executor that forks a warm interpreter per test: the same
interpreter with the same pre-imported modules doing nothing but fork, `_exit(0)` in the child and
wait, one such loop per worker. Its ratio to the baseline is the most a fork-per-test judge can
reach on this machine; the gap between it and the judge is the judge's own per-test work (test
hand-off, sandbox set-up, the program, verdict).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xcoder.judge.judge import Judge
from xcoder.judge.types import JudgeTest, Limits, Program, Verdict
from xcoder.judge.zygote import WARM_MODULES

APLUSB = "a, b = map(int, input().split())\nprint(a + b)\n"
CPU_HEAVY = "n = int(input())\ns = 0\nfor i in range(n):\n    s += i * i % 7\nprint(s)\n"
PRINTER = "import sys\nn = int(input())\nline = 'x' * 99 + '\\n'\nsys.stdout.write(line * (n // 100))\n"


@dataclasses.dataclass
class Workload:
    name: str
    code: str
    tests: list[JudgeTest]
    limits: Limits


@dataclasses.dataclass
class BenchRow:
    name: str
    tests: int
    judge_tps: float
    baseline_tps: float
    judge_ok: int
    baseline_ok: int
    judge_max_time_s: float
    judge_cpu_ms: float  # CPU per test: host process + sandboxes (all test processes)
    baseline_cpu_ms: float  # CPU per test: the baseline's subprocesses (+ its thread pool)

    @property
    def ratio(self) -> float:
        return self.judge_tps / self.baseline_tps if self.baseline_tps else float("inf")


def workloads(quick: bool) -> list[Workload]:
    n_small = 100 if quick else 1000
    heavy_n, heavy_tests = (300_000, 2) if quick else (3_000_000, 10)
    printer_tests = 2 if quick else 6
    ten_mb = 10_000_000
    cpu_expected = str(sum(i * i % 7 for i in range(heavy_n)))
    return [
        Workload(
            f"(a) A+B x{n_small}",
            APLUSB,
            [JudgeTest(f"{i} {i * 7 + 1}\n", str(i + i * 7 + 1)) for i in range(n_small)],
            Limits(time_s=5, memory_mb=256),
        ),
        Workload(
            f"(b) CPU-heavy ({heavy_n:,} iters) x{heavy_tests}",
            CPU_HEAVY,
            [JudgeTest(f"{heavy_n}\n", cpu_expected) for _ in range(heavy_tests)],
            Limits(time_s=60, memory_mb=256),
        ),
        Workload(
            f"(c) 10 MB printer x{printer_tests}",
            PRINTER,
            [JudgeTest(f"{ten_mb}\n", ("x" * 99 + "\n") * (ten_mb // 100)) for _ in range(printer_tests)],
            Limits(time_s=10, memory_mb=512),
        ),
    ]


# Run by `sys.executable -s -c`: the supervisor's start-up minus the sandbox, then N bare forks.
FORK_FLOOR_LOOP = """
import gc, os, sys, time
for name in sys.argv[2].split():
    __import__(name)
gc.collect()
gc.freeze()
n = int(sys.argv[1])
start = time.monotonic()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.wait4(pid, 0)
print(time.monotonic() - start)
"""


@dataclasses.dataclass
class ForkFloor:
    forks: int
    forks_per_s: float  # all loops together
    cpu_ms: float  # per fork, parent + child


def fork_floor(workers: int, forks: int) -> ForkFloor:
    """`workers` concurrent bare fork loops of the judge's interpreter (see module docstring)."""
    per_loop = max(1, forks // workers)
    cpu0 = _cpu(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    loops = [
        subprocess.Popen([sys.executable, "-s", "-c", FORK_FLOOR_LOOP, str(per_loop), " ".join(WARM_MODULES["lean"])],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for loop in loops:
        out, _ = loop.communicate()
        if loop.returncode != 0:
            raise RuntimeError(f"fork-floor loop failed with exit code {loop.returncode}")
        float(out)  # each loop reports its own time: it must have run to the end
    elapsed = time.monotonic() - start
    total = per_loop * workers
    cpu = _cpu(resource.RUSAGE_CHILDREN) - cpu0
    return ForkFloor(total, total / elapsed, cpu / total * 1000)


def _baseline_one(prog_path: str, test: JudgeTest, limits: Limits) -> bool:
    try:
        proc = subprocess.run(
            [sys.executable, prog_path], input=test.input.encode(), capture_output=True, timeout=limits.time_s
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and proc.stdout.decode().strip() == (test.output or "").strip()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_baseline(work: Workload, workers: int) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory(prefix="xcoder-bench-") as tmp:
        prog = Path(tmp, "prog.py")
        prog.write_text(work.code)
        cpu0 = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF)
        start = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            oks = list(pool.map(lambda t: _baseline_one(str(prog), t, work.limits), work.tests))
        elapsed = time.monotonic() - start
        cpu = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF) - cpu0
    return len(work.tests) / elapsed, sum(oks), cpu / len(work.tests) * 1000


def run_judge(judge: Judge, work: Workload) -> tuple[float, int, float, float]:
    judge.run(Program(work.code), work.tests[:2], limits=work.limits)  # warm-up (first fork, page cache)
    cpu0 = _cpu(resource.RUSAGE_SELF) + judge.sandbox_cpu_seconds()
    start = time.monotonic()
    results = judge.run(Program(work.code), work.tests, limits=work.limits, compare="strip")
    elapsed = time.monotonic() - start
    cpu = _cpu(resource.RUSAGE_SELF) + judge.sandbox_cpu_seconds() - cpu0
    ok = sum(r.verdict == Verdict.AC for r in results)
    return len(work.tests) / elapsed, ok, max(r.time_s for r in results), cpu / len(work.tests) * 1000


def run_bench(judge: Judge, *, quick: bool = False) -> list[BenchRow]:
    """The three workloads, each judge run followed by its baseline run."""
    rows = []
    for work in workloads(quick):
        judge_tps, judge_ok, max_time, judge_cpu = run_judge(judge, work)
        base_tps, base_ok, base_cpu = run_baseline(work, judge.workers)
        rows.append(
            BenchRow(work.name, len(work.tests), judge_tps, base_tps, judge_ok, base_ok, max_time, judge_cpu, base_cpu)
        )
    return rows


def format_table(rows: list[BenchRow], judge: Judge, floor: ForkFloor | None = None) -> str:
    head = (
        f"judge: workers={judge.workers} isolation={judge.isolation}; "
        f"baseline: fresh `{Path(sys.executable).name} prog.py` per test, {judge.workers} threads, no sandbox\n"
    )
    lines = [
        "| workload | tests | judge tests/s | baseline tests/s | ratio | judge AC | baseline ok "
        "| judge max test time s | judge CPU ms/test | baseline CPU ms/test | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu_ratio = r.baseline_cpu_ms / r.judge_cpu_ms if r.judge_cpu_ms else float("inf")
        lines.append(
            f"| {r.name} | {r.tests} | {r.judge_tps:.1f} | {r.baseline_tps:.1f} | {r.ratio:.1f}x | "
            f"{r.judge_ok}/{r.tests} | {r.baseline_ok}/{r.tests} | {r.judge_max_time_s:.3f} | "
            f"{r.judge_cpu_ms:.2f} | {r.baseline_cpu_ms:.2f} | {cpu_ratio:.1f}x |"
        )
    if floor is not None and rows:
        small = rows[0]  # (a): the tiny-program workload the floor bounds
        lines.append(
            f"| (floor) bare fork + exit of the warm interpreter, no program/sandbox/I/O | {floor.forks} | "
            f"{floor.forks_per_s:.1f} | {small.baseline_tps:.1f} | {floor.forks_per_s / small.baseline_tps:.1f}x | - | "
            f"- | - | "
            f"{floor.cpu_ms:.2f} | {small.baseline_cpu_ms:.2f} | {small.baseline_cpu_ms / floor.cpu_ms:.1f}x |"
        )
    load = os.getloadavg()
    tail = (f"\nload average during run (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
            f"on {os.cpu_count()} cores")
    return head + "\n".join(lines) + tail
