"""From raw process facts (exit status, limits hit, output) to a verdict; LCB result codes."""

from __future__ import annotations

import dataclasses
import json
import signal as signal_mod

from xcoder.judge.child import RESULT_VALUE
from xcoder.judge.compare import get_comparator
from xcoder.judge.types import JudgeTest, Limits, TestResult, Verdict

CAPTURE_BYTES = 1 << 20  # stdout/stderr kept in a TestResult (the OLE limit is separate)


@dataclasses.dataclass
class RawRun:
    """What the sandbox observed for one test run. `error` set = the judge failed (SE)."""

    exit_code: int | None = None
    signal: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    memory_mb: float = 0.0
    stdout: bytes = b""
    stderr: bytes = b""
    output_bytes: int = 0  # total stdout+stderr bytes produced (before truncation)
    timed_out: bool = False  # wall limit hit (we killed it)
    output_exceeded: bool = False  # we killed it for exceeding limits.output_bytes
    memory_exceeded: bool = False  # a memory cgroup OOM kill / limit failure was recorded
    result_record: dict | None = None  # call kind: {"ok": bool, "value"|"error": str}
    error: str = ""
    timings: dict = dataclasses.field(default_factory=dict)  # supervisor phase timings (diagnostics)


def parse_call_result(data: bytes) -> dict:
    """What the call harness wrote on its result channel: the return value's JSON after one
    marker byte (the common case), or a JSON record {"ok": False, "error": ...}."""
    if data.startswith(RESULT_VALUE):
        return {"ok": True, "value": data[1:].decode("utf-8", "replace")}
    try:
        record = json.loads(data or b"null")
    except ValueError:
        return {"ok": False, "error": "call harness result is not JSON (the program wrote to its channel?)"}
    return record if isinstance(record, dict) else {"ok": False, "error": "bad call harness result"}


def _text(data: bytes) -> tuple[str, bool]:
    truncated = len(data) > CAPTURE_BYTES
    return data[:CAPTURE_BYTES].decode("utf-8", errors="replace"), truncated


def _looks_like_memory_error(stderr: str) -> bool:
    tail = stderr[-2000:]
    return "MemoryError" in tail or "std::bad_alloc" in tail or "Cannot allocate memory" in tail


def classify(index: int, raw: RawRun, test: JudgeTest, kind: str, compare: str, limits: Limits) -> TestResult:
    """Priority: SE > OLE > TLE > MLE > RE > (call harness) > WA/AC."""
    stdout, out_trunc = _text(raw.stdout)
    stderr, err_trunc = _text(raw.stderr)
    result = TestResult(
        index=index,
        verdict=Verdict.SE,
        time_s=round(raw.wall_s, 6),
        cpu_s=round(raw.cpu_s, 6),
        memory_mb=round(raw.memory_mb, 3),
        exit_code=raw.exit_code,
        signal=raw.signal,
        stdout=stdout,
        stderr=stderr,
        truncated=out_trunc or err_trunc,
    )
    cpu_limit = limits.cpu_s if limits.cpu_s is not None else limits.time_s
    if raw.error:
        result.message = f"judge error: {raw.error}"
        return result
    if raw.output_exceeded:
        result.verdict, result.message = Verdict.OLE, f"output exceeded {limits.output_bytes} bytes"
        return result
    if (raw.timed_out or raw.signal == signal_mod.SIGXCPU
            or (raw.signal == signal_mod.SIGKILL and raw.cpu_s >= cpu_limit)):
        result.verdict = Verdict.TLE
        result.message = f"time limit {limits.time_s:g} s (cpu {cpu_limit:g} s) exceeded"
        return result
    if raw.memory_exceeded or (
        limits.memory_mb is not None and raw.exit_code not in (0, None) and _looks_like_memory_error(stderr)
    ):
        result.verdict, result.message = Verdict.MLE, f"memory limit {limits.memory_mb} MB exceeded"
        return result
    if raw.signal == signal_mod.SIGXFSZ:
        result.verdict, result.message = Verdict.RE, f"file size limit {limits.file_size_bytes} bytes exceeded"
        return result
    if raw.signal is not None or raw.exit_code != 0:
        result.verdict = Verdict.RE
        what = f"killed by signal {raw.signal}" if raw.signal is not None else f"exit code {raw.exit_code}"
        result.message = f"runtime error: {what}"
        return result
    if kind == "call":
        record = raw.result_record
        if record is None:
            result.verdict, result.message = Verdict.RE, "call harness: the program exited before returning a value"
            return result
        if not record.get("ok"):
            result.verdict = Verdict.SE if record.get("harness") else Verdict.RE
            result.message = f"call harness: {record.get('error', '')}"
            return result
        result.stdout = record["value"]
        if test.output is None:
            result.verdict = Verdict.AC
            return result
        result.verdict = Verdict.AC if _json_equal(test.output, record["value"]) else Verdict.WA
        return result
    if kind == "assert" or test.output is None:
        result.verdict = Verdict.AC
        return result
    ok = get_comparator(compare)(test.output, stdout if not out_trunc else raw.stdout.decode("utf-8", "replace"))
    result.verdict = Verdict.AC if ok else Verdict.WA
    return result


def _json_equal(expected: str, actual: str) -> bool:
    """LCB call-based rule: `prediction == json.loads(expected)`, tuples already lists."""
    try:
        exp = json.loads(expected)
    except ValueError:
        # Expected output that is not JSON is compared as text (e.g. a bare string answer).
        return expected.strip() == actual.strip()
    return exp == json.loads(actual)


# LiveCodeBench per-test result codes (judge-semantics §4): True pass, -2 WA, -3 TLE, -4 RE/CE
# (and harness errors), -1 global timeout. SE is not a program outcome: callers must count it
# separately (we map it to -1 so it is never mistaken for a wrong answer).
LCB_CODES: dict[Verdict, int | bool] = {
    Verdict.AC: True,
    Verdict.WA: -2,
    Verdict.TLE: -3,
    Verdict.MLE: -4,
    Verdict.RE: -4,
    Verdict.CE: -4,
    Verdict.OLE: -4,
    Verdict.SE: -1,
}


def lcb_code(verdict: Verdict) -> int | bool:
    """Verdict -> LiveCodeBench result code (True, -1, -2, -3 or -4)."""
    return LCB_CODES[verdict]


def lcb_result_list(results: list[TestResult]) -> list[int | bool]:
    """LCB's per-generation list: True per pass, stopping at (and including) the first failure."""
    codes: list[int | bool] = []
    for res in results:
        code = lcb_code(res.verdict)
        codes.append(code)
        if code is not True:
            break
    return codes
