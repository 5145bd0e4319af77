"""`Judge`: run programs on tests in parallel, in a sandbox, and return ordered verdicts.

One `Judge` owns a pool of `workers` executors (one per core by default). Tests of different
programs interleave over the pool; results always come back in job order and, within a job,
in test order. `stop_on_first_failure` jobs run their tests one after another (LCB semantics:
the remaining tests are not run and not returned).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from xcoder.judge import isolation
from xcoder.judge.compare import get_comparator
from xcoder.judge.cpp import CompileResult, CppCompiler
from xcoder.judge.types import JudgeTest, Limits, Program, TestKind, TestResult, Verdict
from xcoder.judge.verdicts import RawRun, classify

log = logging.getLogger(__name__)

LANGUAGES = ("python", "cpp")
HANDOVER_BATCH = 16  # jobs compiled and handed to the warm pool together (the first one alone)
EXECUTORS = ("auto", "warm", "oneshot")


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
        executor: str = "auto",
        cpp_cache_dir: str | os.PathLike | None = None,
    ) -> None:
        from xcoder.judge import isolation as iso

        self._closed = False
        self.workers = workers if workers and workers > 0 else (os.cpu_count() or 1)
        self.isolation = iso.resolve_isolation(isolation)
        if executor not in EXECUTORS:
            raise ValueError(f"unknown judge executor {executor!r}; choose one of {EXECUTORS}")
        self.executor_name = "oneshot" if executor == "oneshot" else "warm"
        self._lock = threading.Lock()
        self._cpp: CppCompiler | None = None
        self._cpp_cache_dir = Path(cpp_cache_dir) if cpp_cache_dir else None
        self._warm = None
        self._executor = self._make_executor(self.executor_name)
        # the warm executor schedules tests itself; threads run oneshot tests and C++ compiles
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="judge")
        log.info("judge: %d workers, isolation=%s, executor=%s", self.workers, self.isolation, self.executor_name)

    @classmethod
    def from_config(cls, judge_cfg: Mapping[str, Any]) -> "Judge":
        """Build from the Hydra `judge` group (`cfg.judge`)."""
        return cls(
            workers=int(judge_cfg.get("workers", 0) or 0),
            isolation=str(judge_cfg.get("isolation", "auto")),
            executor=str(judge_cfg.get("executor", "auto")),
            cpp_cache_dir=judge_cfg.get("cpp_cache_dir") or None,
        )

    # -- executors ---------------------------------------------------------------------------
    def _make_executor(self, name: str) -> Callable[..., RawRun] | None:
        if name == "warm":
            from xcoder.judge.pool import WarmPool

            self._warm = WarmPool(self.workers, self.isolation, self.cpp.cache_dir)
            return None
        from xcoder.judge.oneshot import run_oneshot

        mode = self.isolation
        return lambda **kw: run_oneshot(isolation_mode=mode, **kw)

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
        if self._warm is not None:
            # Python programs are compiled as they are handed over (the first tests run while the
            # rest compile); C++ ones first, in parallel
            return self._run_warm(jobs, self._prepare_all(jobs, python=False))
        prepared = self._prepare_all(jobs)
        futures: list[list[Future] | Future] = []
        for job, prep in zip(jobs, prepared):
            if prep.failure is not None or not job.tests:
                futures.append([])
            elif job.stop_on_first_failure:
                futures.append(self._pool.submit(self._run_chain, job, prep))
            else:
                futures.append([self._pool.submit(self._run_test, job, prep, i) for i in range(len(job.tests))])
        batches: list[list[TestResult]] = []
        for job, prep, fut in zip(jobs, prepared, futures):
            if prep.failure is not None:
                batches.append(_failed_job(job, prep))
            elif isinstance(fut, list):
                batches.append([f.result() for f in fut])
            else:
                batches.append(fut.result())
        return batches

    def _run_warm(self, jobs: Sequence[JudgeJob], prepared: list[_Prepared | None]) -> list[list[TestResult]]:
        """All jobs through the warm pool's dispatcher: one hand-over per job, not per test.

        Largest inputs first (big inputs usually mean long tests, and a long test started last is
        the batch's tail, one core busy while the others idle); Python programs are compiled
        (the CE check, whose code object the sandboxes reuse) in that order, and handed over in
        small batches, so the cores start on the first ones while the rest compile."""
        from xcoder.judge.pool import PoolJob

        assert self._warm is not None
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
        from xcoder.judge.pool import cpp_program, python_program

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
        """CPU time used by the warm sandboxes so far (0 for the oneshot executor)."""
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
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)
        warm = getattr(self, "_warm", None)
        if warm is not None:
            warm.close()

    def __enter__(self) -> "Judge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- internals ---------------------------------------------------------------------------
    def _prepare_all(self, jobs: Sequence[JudgeJob], *, python: bool = True) -> list[_Prepared | None]:
        """Each job's program checked/compiled (C++ in parallel over the thread pool); with
        python=False, Python programs are left as None for the caller to compile."""
        cache: dict[tuple[str, str], _Prepared] = {}
        cpp_jobs = {}
        for job in jobs:
            key = (job.program.language, job.program.code)
            if key not in cache:
                if job.program.language != "python":
                    cpp_jobs[key] = job.program.code
                elif python:
                    cache[key] = _prepare_python(job.program.code)
        if cpp_jobs:  # compile distinct C++ programs in parallel over the pool
            futs = {key: self._pool.submit(self.cpp.compile, code) for key, code in cpp_jobs.items()}
            for key, fut in futs.items():
                cache[key] = _prepared_cpp(cpp_jobs[key], fut.result())
        return [cache.get((job.program.language, job.program.code)) for job in jobs]

    def _execute(self, job: JudgeJob, prep: _Prepared, index: int) -> TestResult:
        test = job.tests[index]
        assert self._executor is not None
        try:
            raw = self._executor(
                language=prep.language,
                code=prep.code,
                binary=prep.binary,
                kind=job.kind,
                fn_name=job.fn_name,
                stdin=test.input if job.kind != "assert" else "",
                test_code=test.code,
                limits=job.limits,
                prelude=job.prelude,
            )
        except Exception as exc:  # noqa: BLE001 - any executor failure is the judge's fault: SE
            log.exception("judge executor failed on test %d", index)
            raw = RawRun(error=f"{type(exc).__name__}: {exc}")
        return classify(index, raw, test, job.kind, job.compare, job.limits)

    def _run_test(self, job: JudgeJob, prep: _Prepared, index: int) -> TestResult:
        return self._execute(job, prep, index)

    def _run_chain(self, job: JudgeJob, prep: _Prepared) -> list[TestResult]:
        results = []
        for index in range(len(job.tests)):
            res = self._execute(job, prep, index)
            results.append(res)
            if res.verdict != Verdict.AC:
                break
        return results


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
        TestResult(index=i, verdict=prep.failure, message=f"{label}: {prep.message[:4000]}", stderr=prep.message[:65536])
        for i in range(min(count, len(job.tests)))
    ]
