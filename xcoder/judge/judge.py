"""`Judge`: run programs on tests in parallel, in a sandbox, and return ordered verdicts.

One `Judge` owns a warm pool of `workers` sandboxes (one per core by default; `pool.py`). Tests
of different programs interleave over the pool; results always come back in job order and,
within a job, in test order. `stop_on_first_failure` jobs run their tests one after another (LCB
semantics: the remaining tests are not run and not returned).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from xcoder.judge.compare import get_comparator
from xcoder.judge.cpp import CompileResult, CppCompiler
from xcoder.judge.pool import PoolJob, WarmPool, cpp_program, python_program
from xcoder.judge.types import JudgeTest, Limits, Program, TestKind, TestResult, Verdict
from xcoder.judge.verdicts import RawRun, classify

log = logging.getLogger(__name__)

LANGUAGES = ("python", "cpp")
HANDOVER_BATCH = 16  # jobs compiled and handed to the warm pool together (the first one alone)


@dataclasses.dataclass
class JudgeJob:
    """One program on many tests (the unit of `Judge.run_many`)."""

    program: Program
    tests: Sequence[JudgeTest]
    kind: str = "stdio"
    fn_name: str | None = None
    compare: str = "strip"
    limits: Limits = dataclasses.field(default_factory=Limits)
    stop_on_first_failure: bool = False
    # stdio: bind LiveCodeBench's import prelude (`from collections import *` ...) before the
    # program, as kinds call/assert always do. Faster than prepending the import block to the
    # program text: the names are computed once per sandbox, not imported again in every test.
    prelude: bool = False


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """A program checked/compiled once per job: CE (or SE) short-circuits every test."""

    language: str
    code: str
    binary: Path | None = None
    failure: Verdict | None = None  # CE or SE
    message: str = ""
    code_obj: Any = None  # Python: the compile that proved it compiles (the warm sandboxes reuse it)


def profile_limits(judge_cfg: Mapping[str, Any], profile: str) -> Limits:
    """`Limits` for a caller profile in the `judge` config group (voting | rl | eval)."""
    try:
        section = judge_cfg["limits"][profile]
    except KeyError:
        raise KeyError(f"judge.limits has no profile {profile!r}") from None
    fields = {f.name for f in dataclasses.fields(Limits)}
    values = {k: section[k] for k in section.keys() if k in fields}
    unknown = set(section.keys()) - fields
    if unknown:
        raise KeyError(f"judge.limits.{profile} has unknown keys {sorted(unknown)}; known: {sorted(fields)}")
    if "output_bytes" not in values and "output_limit_bytes" in judge_cfg:
        values["output_bytes"] = int(judge_cfg["output_limit_bytes"])
    return Limits(**values)


class Judge:
    """Sandboxed parallel judge. Thread-safe; use as a context manager or call `close()`."""

    def __init__(
        self,
        workers: int = 0,
        isolation: str = "auto",
        *,
        cpp_cache_dir: str | os.PathLike | None = None,
    ) -> None:
        """Fails closed (IsolationError, native.NativeBuildError: one line saying why) when the
        sandbox or the supervisor's C loop is unavailable here."""
        from xcoder.judge import isolation as iso

        self._closed = False
        self.workers = workers if workers and workers > 0 else (os.cpu_count() or 1)
        self.isolation = iso.resolve_isolation(isolation)
        self._lock = threading.Lock()
        self._cpp: CppCompiler | None = None
        self._cpp_cache_dir = Path(cpp_cache_dir) if cpp_cache_dir else None
        self._warm = WarmPool(self.workers, self.isolation, self.cpp.cache_dir)
        # C++ compiles only (tests are scheduled by the warm pool's dispatcher)
        self._compile_pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="judge-cc")
        log.info("judge: %d workers, isolation=%s", self.workers, self.isolation)

    @property
    def cpp(self) -> CppCompiler:
        with self._lock:
            if self._cpp is None:
                self._cpp = CppCompiler(self._cpp_cache_dir, self.isolation)
            return self._cpp

    # -- public API --------------------------------------------------------------------------
    def run(
        self,
        program: Program,
        tests: Sequence[JudgeTest],
        *,
        kind: str = "stdio",
        fn_name: str | None = None,
        compare: str = "strip",
        limits: Limits = Limits(),
        stop_on_first_failure: bool = False,
        prelude: bool = False,
    ) -> list[TestResult]:
        """Run one program on `tests`; results in input order."""
        job = JudgeJob(program, tests, kind, fn_name, compare, limits, stop_on_first_failure, prelude)
        return self.run_many([job])[0]

    def run_many(self, jobs: Sequence[JudgeJob]) -> list[list[TestResult]]:
        """Run many programs in parallel over all workers; results in job order."""
        if self._closed:
            raise RuntimeError("Judge is closed")
        for number, job in enumerate(jobs):
            _validate(job, number)
        # Python programs are compiled as they are handed over (the first tests run while the
        # rest compile); C++ ones first, in parallel
        return self._run_warm(jobs, self._prepare_cpp(jobs))

    def _run_warm(self, jobs: Sequence[JudgeJob], prepared: list[_Prepared | None]) -> list[list[TestResult]]:
        """All jobs through the warm pool's dispatcher: one hand-over per job, not per test.

        Largest inputs first (big inputs usually mean long tests, and a long test started last is
        the batch's tail, one core busy while the others idle); Python programs are compiled
        (the CE check, whose code object the sandboxes reuse) in that order, and handed over in
        small batches, so the cores start on the first ones while the rest compile."""
        outputs: list[list[TestResult | None]] = [[None] * len(job.tests) for job in jobs]
        order = sorted(range(len(jobs)), key=lambda i: -sum(len(t.input) + len(t.code or "") for t in jobs[i].tests))
        compiled: dict[str, _Prepared] = {}
        encoded: dict[int, bytes] = {}  # id(input str) -> its UTF-8 (jobs of one problem share the tests)
        submitted: list = []
        batch: list = []
        for i in order:
            job, out = jobs[i], outputs[i]
            if prepared[i] is None:  # a Python program, compiled once per distinct source
                code = job.program.code
                if code not in compiled:
                    compiled[code] = _prepare_python(code)
                prepared[i] = compiled[code]
            prep = prepared[i]
            assert prep is not None
            if prep.failure is not None or not job.tests:
                continue

            def deliver(index: int, raw: RawRun, job: JudgeJob = job, out: list = out) -> bool:
                if raw.error:
                    log.warning("judge: system error on test %d: %s", index, raw.error)
                result = classify(index, raw, job.tests[index], job.kind, job.compare, job.limits)
                out[index] = result
                return result.verdict == Verdict.AC

            batch.append(PoolJob(
                programs=self._programs_for(job, prep),
                tests=[_test_inputs(job.kind, test, encoded) for test in job.tests],
                limits=job.limits,
                profile="lean" if prep.language == "cpp" or (job.kind == "stdio" and not job.prelude) else "full",
                stop_on_first_failure=job.stop_on_first_failure,
                deliver=deliver,
            ))
            if len(batch) >= HANDOVER_BATCH or not submitted:
                self._warm.submit(batch)
                submitted += batch
                batch = []
        self._warm.submit(batch)
        submitted += batch
        self._warm.wait(submitted)
        batches: list[list[TestResult]] = []
        for job, prep, out in zip(jobs, prepared, outputs):
            assert prep is not None
            if prep.failure is not None:
                batches.append(_failed_job(job, prep))
            elif job.stop_on_first_failure:
                ran = []
                for res in out:
                    if res is None:
                        break
                    ran.append(res)
                batches.append(ran)
            else:
                missing = [i for i, res in enumerate(out) if res is None]
                if missing:  # cannot happen: the pool delivers every test of a non-stop job
                    raise RuntimeError(f"judge pool returned no result for tests {missing[:5]}")
                batches.append(out)  # type: ignore[arg-type]
        return batches

    def _programs_for(self, job: JudgeJob, prep: _Prepared) -> list[tuple[object, bytes]]:
        if prep.language == "cpp":
            assert prep.binary is not None
            path = f"/cpp/{prep.binary.name}" if self.isolation == "bwrap" else str(prep.binary)
            return [cpp_program(path)]
        if job.kind == "assert":  # the test code is part of the program: one per test
            return [python_program(kind="assert", code=prep.code, code_obj=prep.code_obj, fn_name=job.fn_name,
                                   prelude=job.prelude, test_code=test.code) for test in job.tests]
        return [python_program(kind=job.kind, code=prep.code, code_obj=prep.code_obj, fn_name=job.fn_name,
                               prelude=job.prelude)]

    def sandbox_cpu_seconds(self) -> float:
        """CPU time used by the warm sandboxes so far."""
        warm = getattr(self, "_warm", None)
        return warm.cpu_seconds() if warm is not None else 0.0

    def program_uids(self) -> set[int]:
        """Unprivileged uids programs run as (diagnostics: no process may hold one between tests)."""
        warm = getattr(self, "_warm", None)
        return warm.program_uids() if warm is not None else set()

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        pool = getattr(self, "_compile_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)
        warm = getattr(self, "_warm", None)
        if warm is not None:
            warm.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- internals ---------------------------------------------------------------------------
    def _prepare_cpp(self, jobs: Sequence[JudgeJob]) -> list[_Prepared | None]:
        """Each C++ job's program compiled (distinct sources in parallel); Python jobs are left
        as None for `_run_warm` to compile as it hands them over."""
        sources = {job.program.code for job in jobs if job.program.language == "cpp"}
        futures = {code: self._compile_pool.submit(self.cpp.compile, code) for code in sources}
        done = {code: _prepared_cpp(code, fut.result()) for code, fut in futures.items()}
        return [done.get(job.program.code) if job.program.language == "cpp" else None for job in jobs]


def _validate(job: JudgeJob, number: int) -> None:
    if job.program.language not in LANGUAGES:
        raise ValueError(f"job {number}: unsupported language {job.program.language!r}; choose one of {LANGUAGES}")
    kinds = {k.value for k in TestKind}
    if job.kind not in kinds:
        raise ValueError(f"job {number}: unknown test kind {job.kind!r}; choose one of {sorted(kinds)}")
    if job.kind in ("call", "assert") and job.program.language != "python":
        raise ValueError(f"job {number}: kind {job.kind!r} needs a Python program")
    if job.kind == "call" and not job.fn_name:
        raise ValueError(f"job {number}: kind 'call' needs fn_name")
    get_comparator(job.compare)  # raises on unknown modes
    if job.limits.time_s <= 0:
        raise ValueError(f"job {number}: limits.time_s must be > 0")
    for i, test in enumerate(job.tests):
        if job.kind == "assert" and test.code is None:
            raise ValueError(f"job {number} test {i}: kind 'assert' needs JudgeTest.code")


def _test_inputs(kind: str, test: JudgeTest, encoded: dict[int, bytes]) -> tuple[bytes, bytes]:
    """(call payload, stdin) of a test: a call-kind test's input is its arguments, not stdin.
    `encoded` memoizes the UTF-8 of input strings (alive for the call: ids stay unique)."""
    if kind == "assert":
        return b"", b""
    data = encoded.get(id(test.input))
    if data is None:
        data = encoded[id(test.input)] = test.input.encode()
    return (data, b"") if kind == "call" else (b"", data)


def _prepare_python(code: str) -> _Prepared:
    try:
        code_obj = compile(code, "prog.py", "exec")
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in source
        return _Prepared("python", code, failure=Verdict.CE, message=f"{type(exc).__name__}: {exc}")
    except (MemoryError, RecursionError) as exc:  # pathological nesting: the program's fault
        return _Prepared("python", code, failure=Verdict.CE, message=f"{type(exc).__name__} while compiling")
    return _Prepared("python", code, code_obj=code_obj)


def _prepared_cpp(code: str, res: CompileResult) -> _Prepared:
    if res.ok:
        return _Prepared("cpp", code, binary=res.binary)
    verdict = Verdict.SE if res.system_error else Verdict.CE
    return _Prepared("cpp", code, failure=verdict, message=res.message)


def _failed_job(job: JudgeJob, prep: _Prepared) -> list[TestResult]:
    assert prep.failure is not None
    count = 1 if job.stop_on_first_failure else len(job.tests)
    label = "compile error" if prep.failure == Verdict.CE else "judge error"
    return [
        TestResult(index=i, verdict=prep.failure, message=f"{label}: {prep.message[:4000]}",
                   stderr=prep.message[:65536])
        for i in range(min(count, len(job.tests)))
    ]
