"""Benchmark: dual verification of one task, 8 candidates x 20 tests, judge vs subprocess-per-test.

    python -m xcoder.synth.verify.bench [--candidates 8] [--tests 20] [--repeat 3] [--isolation auto]

Both paths produce the same output table and then run the same voting + golden selection; the
baseline is upstream's data executor (one `python3 file.py` subprocess per test, sequential, 5 s
timeout). Timings are wall-clock on this machine, measured in the same run, reported as a ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xcoder.synth.verify.core import GoldenConfig, VoteConfig, verify_outputs

CORRECT = [
    "n = int(input())\na = list(map(int, input().split()))\nbest = cur = a[0]\nfor x in a[1:]:\n"
    "    cur = max(x, cur + x)\n    best = max(best, cur)\nprint(best)\n",
    "import sys\ndata = sys.stdin.read().split()\nn = int(data[0]); a = list(map(int, data[1:1 + n]))\n"
    "best = -10**18; cur = 0\nfor x in a:\n    cur = max(cur + x, x); best = max(best, cur)\nprint(best)\n",
    "def main():\n    n = int(input()); a = [int(x) for x in input().split()]\n    pre = [0]\n"
    "    for x in a: pre.append(pre[-1] + x)\n    lo = pre[0]; best = None\n    for i in range(1, n + 1):\n"
    "        v = pre[i] - lo\n        best = v if best is None else max(best, v)\n        lo = min(lo, pre[i])\n"
    "    print(best)\nmain()\n",
]
WRONG = [
    # forgets that all numbers may be negative
    "n = int(input())\na = list(map(int, input().split()))\nbest = cur = 0\nfor x in a:\n    cur = max(0, cur + x)\n"
    "    best = max(best, cur)\nprint(best)\n",
    # off by one: ignores the last element
    "n = int(input())\na = list(map(int, input().split()))\nbest = cur = a[0]\nfor x in a[1:-1]:\n"
    "    cur = max(x, cur + x)\n    best = max(best, cur)\nprint(best)\n",
]


def make_task(candidates: int, tests: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    codes = [CORRECT[i % len(CORRECT)] for i in range(candidates - 2)] + WRONG[: min(2, candidates)]
    inputs = []
    for j in range(tests):
        n = rng.randint(1, 200 if j % 5 else 2000)
        lo = -100 if j % 3 else -1000
        inputs.append(f"{n}\n{' '.join(str(rng.randint(lo, 100)) for _ in range(n))}\n")
    return codes, inputs


def baseline_outputs(codes: list[str], inputs: list[str], timeout: float = 5.0) -> list[list[str | None]]:
    """Upstream's executor: write the file, `python3 file.py` per test, exit 0 + stdout votes."""
    out: list[list[str | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, code in enumerate(codes):
            path = Path(tmp) / f"cand{i}.py"
            path.write_text(code)
            row: list[str | None] = []
            for text in inputs:
                try:
                    p = subprocess.run([sys.executable, str(path)], input=text, capture_output=True, text=True,
                                       timeout=timeout)
                    row.append(p.stdout if p.returncode == 0 else None)
                except subprocess.TimeoutExpired:
                    row.append(None)
            out.append(row)
    return out


def judge_outputs(judge, codes: list[str], inputs: list[str]) -> list[list[str | None]]:
    from xcoder.judge import JudgeJob, JudgeTest, Limits, Program, Verdict

    jobs = [JudgeJob(Program(c), [JudgeTest(input=t) for t in inputs], kind="stdio",
                     limits=Limits(time_s=5, memory_mb=1024)) for c in codes]
    return [[r.stdout if r.verdict == Verdict.AC else None for r in row] for row in judge.run_many(jobs)]


def verify(outputs, n_tests):
    tests = [{"test_id": f"t{j}", "input": "", "tag": "stress" if j % 5 == 0 else "plain"} for j in range(n_tests)]
    return verify_outputs(task_id="bench", kind="stdio", candidate_ids=[f"c{i}" for i in range(len(outputs))],
                          tests=tests, outputs=outputs, vote_cfg=VoteConfig(), golden_cfg=GoldenConfig())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--tests", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3, help="judge repetitions (median reported)")
    ap.add_argument("--workers", type=int, default=0, help="judge workers (0 = all cores)")
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args(argv)
    from xcoder.judge import Judge

    codes, inputs = make_task(args.candidates, args.tests)
    runs = args.candidates * args.tests
    with Judge(workers=args.workers, isolation=args.isolation) as judge:
        judge_outputs(judge, codes[:1], inputs[:1])  # warm-up (worker start-up is paid once per run)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = verify(judge_outputs(judge, codes, inputs), args.tests)
            times.append(time.perf_counter() - t0)
        info = f"workers={judge.workers} isolation={judge.isolation}"
    t_judge = statistics.median(times)
    print(f"dual verification, 1 task, {args.candidates} candidates x {args.tests} tests = {runs} runs, "
          f"{os.cpu_count()} cores")
    print(f"judge ({info}): median {t_judge:.3f} s over {args.repeat} (all: {', '.join(f'{t:.3f}' for t in times)})"
          f" -> {res.status}, golden c{res.golden_index}, {len(res.tests)} tests kept")
    if not args.skip_baseline:
        t0 = time.perf_counter()
        base = verify(baseline_outputs(codes, inputs), args.tests)
        t_base = time.perf_counter() - t0
        print(f"baseline (subprocess per test, sequential): {t_base:.3f} s -> {base.status}, golden "
              f"c{base.golden_index}")
        print(f"speed-up: {t_base / t_judge:.1f}x; target <= 0.5 s: {'met' if t_judge <= 0.5 else 'NOT met'}")
        same = base.tests == res.tests and base.pass_matrix == res.pass_matrix
        print(f"same labels and pass matrix as baseline: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
