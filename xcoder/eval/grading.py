"""Grading samples through the judge with LiveCodeBench's rules, and LCB's result codes.

Per (problem, sample): the extracted program (after LCB's import prelude) runs on public then
private tests with the `lcb` comparator, a per-test time limit (6 s) and stop-at-first-failure;
the per-test verdicts map to LCB's result list (True, -2 WA, -3 TLE, -4 RE/compile/MLE/OLE). A
sample is correct iff every test passed. Judge failures (SE) are retried once, then counted as
`judge_errors` and reported, never silently scored. Grades are cached by (sample, code hash,
tests hash, grading settings) so re-scoring does not re-run programs.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xcoder.eval.problems import Problem
from xcoder.judge.child import CALL_PRELUDE
from xcoder.judge.types import JudgeTest, Limits, Program, TestResult, Verdict

log = logging.getLogger(__name__)

# LiveCodeBench `import_string` (lcb_runner/evaluation/testing_util.py): prepended to every
# program, stdin and call-based alike: solutions use `deque`, `List`, `inf` ... unimported and
# recurse deeper than CPython's default 1000 frames. The int->str digit cap is the parent's
# `sys.set_int_max_str_digits(50000)`, inherited by LCB's forked children.
# The judge binds the import block itself (`JudgeJob.prelude`: names computed once per sandbox,
# not ~35 imports re-run in every test); the program text starts with the two limit calls.
LCB_LIMITS = "sys.setrecursionlimit(50000)\nsys.set_int_max_str_digits(50000)\n"
LCB_PRELUDE = CALL_PRELUDE + LCB_LIMITS

# LCB result codes (lcb_runner/evaluation/testing_util.py)
LCB_PASS = True
LCB_GLOBAL_TIMEOUT = -1
LCB_WA = -2
LCB_TLE = -3
LCB_RE = -4  # runtime error, compile error, harness error
LCB_RUNNER_ERROR = -5
VERDICT_TO_LCB: dict[Verdict, int | bool] = {
    Verdict.AC: LCB_PASS, Verdict.WA: LCB_WA, Verdict.TLE: LCB_TLE, Verdict.RE: LCB_RE,
    Verdict.CE: LCB_RE, Verdict.MLE: LCB_RE, Verdict.OLE: LCB_RE,
}


@dataclasses.dataclass(frozen=True)
class GradingConfig:
    time_s: float = 6.0  # per test [judge-semantics §4: LCB --timeout 6]
    memory_mb: int | None = 4096
    compare: str = "lcb"
    stop_on_first_failure: bool = True
    lcb_prelude: bool = True
    chunk: int = 256  # jobs per judge.run_many call (grades are saved after each)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> GradingConfig:
        return cls(**{f.name: cfg[f.name] for f in dataclasses.fields(cls) if f.name in cfg})

    def key(self) -> str:
        d = dataclasses.asdict(self)
        d.pop("chunk")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass
class Grade:
    problem_id: str
    index: int
    code_sha: str
    tests_digest: str
    results: list[Any]  # LCB result list: True per passed test, then the failure code
    verdicts: list[str]
    correct: bool
    judge_error: bool = False
    message: str = ""


def program_text(problem: Problem, code: str, grading: GradingConfig) -> str:
    parts = [LCB_LIMITS] if grading.lcb_prelude else []  # the import block: JudgeJob.prelude
    if problem.prelude:
        parts.append(problem.prelude)
    parts.append(code)
    return "\n".join(parts)


def judge_tests(problem: Problem) -> list[JudgeTest]:
    return [JudgeTest(input=t.input, output=t.output, code=t.code) for t in problem.tests]


def lcb_results(results: Sequence[TestResult], n_tests: int) -> tuple[list[Any], bool, bool, str]:
    """Judge results -> (LCB list, correct, judge_error, message)."""
    out: list[Any] = []
    for r in results:
        if r.verdict == Verdict.SE:
            return out + [LCB_RUNNER_ERROR], False, True, r.message
        code = VERDICT_TO_LCB[r.verdict]
        out.append(code)
        if code is not LCB_PASS:
            return out, False, False, f"test {r.index}: {r.verdict.value} {r.message}"[:500]
    correct = len(out) == n_tests and all(x is True for x in out)
    return out, correct, False, "" if correct else f"only {len(out)}/{n_tests} tests returned"


def code_sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:16]


class GradeCache:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[tuple[str, int, str, str], Grade]:
        out: dict[tuple[str, int, str, str], Grade] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    g = Grade(**json.loads(line))
                except (ValueError, TypeError):
                    log.warning("%s: unreadable grade line ignored", self.path)
                    continue
                out[(g.problem_id, g.index, g.code_sha, g.tests_digest)] = g
        return out

    def append(self, grades: Sequence[Grade]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(dataclasses.asdict(g)) + "\n" for g in grades))
            fh.flush()
            os.fsync(fh.fileno())


def grade_programs(judge: Any, items: Sequence[tuple[Problem, int, str]], grading: GradingConfig,
                   cache: GradeCache | None = None) -> list[Grade]:
    """Grade (problem, sample index, extracted code) triples; cached grades are reused."""
    from xcoder.judge import JudgeJob

    done = cache.load() if cache else {}
    grades: list[Grade | None] = []
    todo: list[int] = []
    for i, (problem, index, code) in enumerate(items):
        g = done.get((problem.problem_id, index, code_sha(code), problem.tests_digest()))
        if g is not None and g.judge_error:
            g = None  # a judge failure is not an outcome: grade again
        grades.append(g)
        if g is None:
            todo.append(i)
    limits = Limits(time_s=grading.time_s, memory_mb=grading.memory_mb)

    def job(i: int) -> Any:
        problem, _, code = items[i]
        return JudgeJob(Program(program_text(problem, code, grading), language="python"), judge_tests(problem),
                        kind=problem.kind, fn_name=problem.fn_name, compare=grading.compare, limits=limits,
                        stop_on_first_failure=grading.stop_on_first_failure, prelude=grading.lcb_prelude)

    # identical programs of one problem (common: empty extractions, low-temperature repeats) run once
    unique: dict[tuple[str, str], list[int]] = {}
    for i in todo:
        problem, _, code = items[i]
        unique.setdefault((problem.problem_id, code_sha(code)), []).append(i)
    reps = [group[0] for group in unique.values()]

    def run_part(part: list[int]) -> list[list[TestResult]]:
        batches = judge.run_many([job(i) for i in part])
        retry = [i for i, res in zip(part, batches) if any(r.verdict == Verdict.SE for r in res)]
        if retry:
            log.warning("judge system error on %d samples; retrying them once", len(retry))
            again = dict(zip(retry, judge.run_many([job(i) for i in retry])))
            batches = [again.get(i, res) for i, res in zip(part, batches)]
        return batches

    parts = [reps[start : start + grading.chunk] for start in range(0, len(reps), grading.chunk)]
    bar = tqdm(total=len(todo), desc="eval grade", unit="sample", disable=len(todo) < 20)
    # Two chunks in flight: the judge starts the next chunk's samples while this chunk's slowest
    # ones finish (no idle cores at chunk boundaries); grades are still saved chunk by chunk, in order.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="eval-grade") as pool:
        in_flight: collections.deque = collections.deque()
        for part in parts + [None]:
            if part is not None:
                in_flight.append((part, pool.submit(run_part, part)))
            while in_flight and (part is None or len(in_flight) > 1):
                done_part, future = in_flight.popleft()
                new = _grades_for(done_part, future.result(), items, unique, grades)
                if cache:
                    cache.append(new)
                bar.update(len(new))
    bar.close()
    return [g for g in grades if g is not None]


def _grades_for(part: list[int], batches: list[list[TestResult]], items: Sequence[tuple[Problem, int, str]],
                unique: dict[tuple[str, str], list[int]], grades: list[Grade | None]) -> list[Grade]:
    """One chunk's judge results as grades, for every sample that shares each graded program."""
    new = []
    for rep, res in zip(part, batches):
        problem, _, code = items[rep]
        lcb, correct, se, msg = lcb_results(res, len(problem.tests))
        if se:
            log.error("judge system error grading %s sample %d: %s", problem.problem_id, items[rep][1], msg)
        for i in unique[(problem.problem_id, code_sha(code))]:
            g = Grade(problem.problem_id, items[i][1], code_sha(code), problem.tests_digest(), lcb,
                      [r.verdict.value for r in res], correct, se, msg)
            grades[i] = g
            new.append(g)
    return new
