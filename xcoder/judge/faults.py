"""Where a test's CPU goes: copy-on-write faults and CPU per test, supervisor vs test process.

    python -m xcoder.judge.faults [--tests N] [--code SRC]

One warm worker runs the same program N times. The test process's faults come from its own
`wait4` rusage (in every report); the supervisor's from `/proc/<pid>/stat` before and after, as
does its CPU and its reaped children's. Page faults, unlike seconds, barely move with machine
load, so this is the number to compare when changing the per-test path.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from xcoder.judge.judge import Judge
from xcoder.judge.types import JudgeTest, Limits, Program

APLUSB = "a, b = map(int, input().split())\nprint(a + b)\n"


@dataclasses.dataclass
class FaultProfile:
    tests: int
    wall_ms: float  # per test, one worker
    supervisor_faults: float
    child_faults: float
    supervisor_cpu_ms: float
    child_cpu_ms: float


def _supervisor_pid(bwrap_pid: int) -> int:
    """The Python process under the worker's bubblewrap (or the worker itself without bwrap)."""
    stack = [bwrap_pid]
    while stack:
        pid = stack.pop()
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith("python"):
                return pid
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    raise RuntimeError(f"no Python supervisor under pid {bwrap_pid}")


def _stat(pid: int) -> tuple[int, float, float]:
    """(minor faults, own CPU s, reaped children's CPU s) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def profile(tests: int = 1000, code: str = APLUSB, isolation: str = "auto") -> FaultProfile:
    with Judge(workers=1, isolation=isolation) as judge:
        suite = [JudgeTest(f"{i} {i + 1}\n", None) for i in range(tests)]
        judge.run(Program(code), suite[:20])  # start-up and the first forks are not per test
        worker = judge._warm.cores[0]["lean"]
        worker.recent_timings.clear()
        assert worker.proc is not None
        supervisor = _supervisor_pid(worker.proc.pid)
        faults0, cpu0, children0 = _stat(supervisor)
        start = time.monotonic()
        judge.run(Program(code), suite, limits=Limits(time_s=5, memory_mb=256))
        wall = time.monotonic() - start
        faults1, cpu1, children1 = _stat(supervisor)
        return FaultProfile(
            tests=tests,
            wall_ms=wall / tests * 1000,
            supervisor_faults=(faults1 - faults0) / tests,
            child_faults=statistics.mean(t.get("minflt", 0) for t in worker.recent_timings),
            supervisor_cpu_ms=(cpu1 - cpu0) / tests * 1000,
            child_cpu_ms=(children1 - children0) / tests * 1000,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.judge.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--code", default=APLUSB, help="program source (default: A+B)")
    parser.add_argument("--isolation", default="auto")
    args = parser.parse_args(argv)
    p = profile(args.tests, args.code, args.isolation)
    print(f"{p.tests} tests, one worker, {p.wall_ms:.3f} ms/test wall")
    print("| per test | supervisor | test process |")
    print("|---|---:|---:|")
    print(f"| minor (copy-on-write) faults | {p.supervisor_faults:.0f} | {p.child_faults:.0f} |")
    print(f"| CPU ms | {p.supervisor_cpu_ms:.3f} | {p.child_cpu_ms:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
