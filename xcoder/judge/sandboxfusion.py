"""SandboxFusion's `/run_code` wire format, and the mapping from our verdicts onto it.

Stock clients (the `sandbox-fusion` PyPI client, verl's `reward_score.sandbox_fusion`) read only
these fields, so they are reproduced exactly as in judge-semantics.md §1. The judge's richer
verdicts (MLE, OLE, SE, ...) are folded into SandboxFusion's three run statuses by its own status
rule; the original verdict is kept in the extra `xcoder_verdict` field, which stock clients ignore.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field

from xcoder.judge.types import TestResult, Verdict

# Every language SandboxFusion's RunCodeRequest accepts (server list + the client's extra literals).
SANDBOXFUSION_LANGUAGES = frozenset(
    "python python2 cpp nodejs go go_test java php csharp bash typescript sql rust cuda lua R perl "
    "D_ut ruby scala julia pytest junit kotlin_script jest verilog python_gpu lean swift racket "
    "gtest react".split()
)
# The languages this judge executes; anything else is refused with HTTP 400.
SUPPORTED_LANGUAGES = ("python", "cpp")


class CommandRunStatus(str, enum.Enum):
    Finished = "Finished"
    Error = "Error"
    TimeLimitExceeded = "TimeLimitExceeded"


class RunStatus(str, enum.Enum):
    Success = "Success"  # every command finished with return code 0
    Failed = "Failed"  # a command timed out or returned non-zero (the program's fault)
    SandboxError = "SandboxError"  # the sandbox failed (never the program's fault)


class RunCodeRequest(BaseModel):
    """SandboxFusion's request body. Unknown extra fields are ignored, as upstream does."""

    code: str
    language: str
    compile_timeout: float = 10  # seconds; SandboxFusion default
    run_timeout: float = 10  # seconds; SandboxFusion default
    memory_limit_MB: int = -1  # -1 = SandboxFusion's "no limit" (we apply the server's default cap)
    stdin: str | None = None
    files: dict[str, str | None] = Field(default_factory=dict)  # path -> base64 (unsupported)
    fetch_files: list[str] = Field(default_factory=list)  # paths to return (unsupported)


class CommandRunResult(BaseModel):
    status: CommandRunStatus
    execution_time: float | None = None
    cpu_time: float | None = None
    return_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None


class RunCodeResponse(BaseModel):
    status: RunStatus
    message: str = ""
    compile_result: CommandRunResult | None = None
    run_result: CommandRunResult | None = None
    executor_pod_name: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    xcoder_verdict: str | None = None  # our verdict (AC/RE/TLE/MLE/...); ignored by stock clients


def unsupported_language_message(language: str) -> str | None:
    """None when the judge can run `language`, else the reason it cannot (for an HTTP 400)."""
    if language in SUPPORTED_LANGUAGES:
        return None
    if language in SANDBOXFUSION_LANGUAGES:
        return (
            f"language {language!r} is a SandboxFusion language but the xcoder judge runs only "
            f"{', '.join(SUPPORTED_LANGUAGES)}"
        )
    return f"unknown language {language!r}; the xcoder judge runs {', '.join(SUPPORTED_LANGUAGES)}"


def _return_code(result: TestResult) -> int:
    """A process return code in asyncio's convention: negative signal number when killed."""
    if result.exit_code is not None and result.exit_code != 0:
        return result.exit_code
    if result.signal:
        return -int(result.signal)
    if result.verdict in (Verdict.AC, Verdict.WA):
        return 0
    # MLE/OLE/RE without an exit status: the judge stopped the program. Report SIGKILL, as an
    # OOM kill or SandboxFusion's tree kill would, so the status rule yields Failed.
    return -9


def _reason(result: TestResult) -> str:
    if result.verdict == Verdict.AC:
        return ""
    return f"{result.verdict.value}: {result.message}" if result.message else result.verdict.value


def to_run_code_response(result: TestResult, language: str) -> RunCodeResponse:
    """Fold one judge result into SandboxFusion's response, applying its status rule.

    Status rule (judge-semantics §1): any command Error -> SandboxError; else any TLE -> Failed
    (TLE shows only in run_result.status); else any non-zero return code -> Failed; else Success.
    A C++ compile failure has run_result null; Python has no compile step (a SyntaxError is a run
    that exits 1 with the traceback on stderr, as under `python file.py`).
    """
    verdict = result.verdict
    compiled = language == "cpp"
    ok_compile = (
        CommandRunResult(status=CommandRunStatus.Finished, execution_time=0.0, return_code=0, stdout="", stderr="")
        if compiled
        else None
    )
    if verdict == Verdict.SE:
        failed = CommandRunResult(
            status=CommandRunStatus.Error,
            execution_time=result.time_s,
            stdout=result.stdout,
            stderr=result.stderr,
        )
        return RunCodeResponse(
            status=RunStatus.SandboxError, message=_reason(result), run_result=failed, xcoder_verdict=verdict.value
        )
    if verdict == Verdict.CE and compiled:
        compile_result = CommandRunResult(
            status=CommandRunStatus.Finished,
            execution_time=result.time_s,
            return_code=result.exit_code if result.exit_code not in (None, 0) else 1,
            stdout=result.stdout,
            stderr=result.stderr or result.message,
        )
        return RunCodeResponse(
            status=RunStatus.Failed, message=_reason(result), compile_result=compile_result,
            xcoder_verdict=verdict.value
        )
    if verdict == Verdict.TLE:
        run = CommandRunResult(
            status=CommandRunStatus.TimeLimitExceeded,
            execution_time=result.time_s,
            cpu_time=result.cpu_s,
            return_code=None,
            stdout=result.stdout,
            stderr=result.stderr,
        )
        return RunCodeResponse(
            status=RunStatus.Failed, message=_reason(result), compile_result=ok_compile, run_result=run,
            xcoder_verdict=verdict.value,
        )
    if verdict == Verdict.CE:  # Python syntax error: python exits 1 with the traceback
        rc = result.exit_code if result.exit_code not in (None, 0) else 1
        stderr = result.stderr or result.message
    else:
        rc = _return_code(result)
        stderr = result.stderr
        if verdict not in (Verdict.AC, Verdict.WA) and rc == 0:  # RE/MLE/OLE are failures by definition
            rc = -9
    run = CommandRunResult(
        status=CommandRunStatus.Finished,
        execution_time=result.time_s,
        cpu_time=result.cpu_s,
        return_code=rc,
        stdout=result.stdout,
        stderr=stderr,
    )
    status = RunStatus.Success if rc == 0 else RunStatus.Failed
    return RunCodeResponse(
        status=status, message=_reason(result), compile_result=ok_compile, run_result=run, xcoder_verdict=verdict.value
    )
