"""Grading throughput: our judge vs an LCB-style harness on the same submissions, in one run.

The baseline reproduces LiveCodeBench's process model (lcb_runner/evaluation/compute_code_generation_metrics.py
+ testing_util.py): a `ProcessPoolExecutor` over submissions; per submission a fresh
`multiprocessing.Manager()` and `multiprocessing.Process` that `exec`s the program in-process with a
mocked stdin, one `signal.alarm` per test, stopping at the first failure. Ours: `grade_programs`
through `xcoder.judge.Judge` (sandboxed, every test its own process). Both see the same
submissions (the mini sample's reference solutions plus wrong/crashing/slow variants), both use
all cores, and their verdicts are compared. `python -m xcoder.eval.bench [--copies N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from xcoder.config import REPO_ROOT
from xcoder.eval.grading import LCB_PRELUDE, GradingConfig, grade_programs
from xcoder.eval.lcb_data import load_problems
from xcoder.eval.problems import Problem
from xcoder.judge.compare import lcb_equal

MINI = REPO_ROOT / "eval" / "data" / "lcb_mini.jsonl"
MINI_SOLUTIONS = REPO_ROOT / "eval" / "data" / "lcb_mini_solutions.json"


def submissions(copies: int) -> list[tuple[Problem, int, str]]:
    """Reference solution, a wrong answer, a crash per problem; `copies` times over."""
    problems = load_problems([MINI], trust_pickle=True)
    refs = json.loads(MINI_SOLUTIONS.read_text())
    items = []
    for c in range(copies):
        for p in problems:
            ref = refs[p.problem_id]
            wrong = ref.replace("return ", "return 1 + ", 1) if p.kind == "call" else ref.replace("print(", "print(1, ",
                                                                                                  1)
            crash = "raise SystemError('boom')\n" + ref if p.kind == "stdio" else ref.replace("return ",
                                                                                              "return 1 // 0 + ", 1)
            tag = f"\n# submission copy {c}\n"  # every submission distinct: no dedup/caching advantage
            items += [(p, 3 * c, ref + tag), (p, 3 * c + 1, wrong + tag), (p, 3 * c + 2, crash + tag)]
    return items


# ---- LCB-style baseline ----------------------------------------------------------------------
class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _lcb_child(code: str, kind: str, fn_name: str | None, tests: list[tuple[str, str]], timeout: int, out: Any) -> None:
    import builtins

    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(50000)
    try:
        signal.alarm(timeout)
        scope: dict[str, Any] = {"__name__": "tmp_sol"}
        if kind == "stdio":
            body = "\n".join("    " + line for line in code.split("\n"))
            exec(compile(LCB_PRELUDE + "\ndef wrapped_function():\n" + body + "\n    pass\n", "<sol>", "exec"), scope)
        else:
            exec(compile(LCB_PRELUDE + "\n" + code, "<sol>", "exec"), scope)
        signal.alarm(0)
    except BaseException:
        signal.alarm(0)
        out.append(-4)
        return
    for inp, expected in tests:
        try:
            signal.alarm(timeout)
            if kind == "stdio":
                lines = iter(inp.split("\n"))
                old_in, old_input = sys.stdin, builtins.input
                sys.stdin = io.StringIO(inp)
                builtins.input = lambda *a: next(lines)  # noqa: B023 (used only in this iteration)
                buf = io.StringIO()
                try:
                    with contextlib.redirect_stdout(buf):
                        try:
                            scope["wrapped_function"]()
                        except SystemExit:
                            pass
                finally:
                    sys.stdin, builtins.input = old_in, old_input
                ok = lcb_equal(expected, buf.getvalue())
            else:
                fn = getattr(scope["Solution"](), fn_name) if "Solution" in scope else scope[fn_name]
                got = fn(*[json.loads(line) for line in inp.split("\n")])
                ok = json.loads(json.dumps(got)) == json.loads(expected)
            signal.alarm(0)
        except _Timeout:
            out.append(-3)
            return
        except BaseException:
            signal.alarm(0)
            out.append(-4)
            return
        out.append(True if ok else -2)
        if not ok:
            return


def lcb_check_correctness(code: str, kind: str, fn_name: str | None, tests: list[tuple[str, str]],
                          timeout: int) -> list:
    """LCB's `check_correctness`: a Manager list and a fresh Process per submission, global join timeout."""
    manager = multiprocessing.Manager()
    try:
        result = manager.list()
        p = multiprocessing.Process(target=_lcb_child, args=(code, kind, fn_name, tests, timeout, result))
        p.start()
        p.join(timeout=(timeout + 1) * len(tests) + 5)
        if p.is_alive():
            p.kill()
        return list(result) or [-1] * len(tests)
    finally:
        manager.shutdown()


def run_lcb_style(items: Sequence[tuple[Problem, int, str]], workers: int, timeout: int) -> list[list]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(lcb_check_correctness, code, p.kind, p.fn_name,
                               [(t.input, t.output) for t in p.tests], timeout) for p, _, code in items]
        return [f.result() for f in futures]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.eval.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=16,
                        help="repeat the submission set N times (16: ~5 s of LCB-style grading, long enough to time)")
    parser.add_argument("--workers", type=int, default=0, help="parallel workers for both (0 = all cores)")
    parser.add_argument("--isolation", default="auto", help="judge isolation (auto | bwrap | none)")
    args = parser.parse_args(argv)
    workers = args.workers or os.cpu_count() or 1
    items = submissions(args.copies)
    n_tests = sum(len(p.tests) for p, _, _ in items)
    from xcoder.judge import Judge

    grading = GradingConfig(time_s=6)
    with Judge(workers=workers, isolation=args.isolation) as judge:
        grade_programs(judge, items[:3], grading)  # warm-up (worker start), not timed
        t0 = time.perf_counter()
        ours = grade_programs(judge, items, grading)
        t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = run_lcb_style(items, workers, timeout=6)
    t_base = time.perf_counter() - t0
    agree = sum(g.correct == (all(x is True for x in b) and len(b) == len(p.tests))
                for g, b, (p, _, _) in zip(ours, base, items))
    print(f"submissions: {len(items)} ({n_tests} tests max), workers: {workers}")
    print(f"LCB-style harness (fresh Manager+Process per submission, in-process exec): {t_base:.2f} s, "
          f"{len(items) / t_base:.1f} submissions/s")
    print(f"xcoder judge (isolation {args.isolation}):                                  {t_ours:.2f} s, "
          f"{len(items) / t_ours:.1f} submissions/s")
    print(f"speed-up: {t_base / t_ours:.2f}x (target >= 5x); correctness agrees on {agree}/{len(items)} submissions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
