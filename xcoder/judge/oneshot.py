"""One fresh (sandboxed) process per test: the simple, slow executor.

Used when the warm-interpreter pool is not wanted (`Judge(executor="oneshot")`) and as a
reference for its semantics: a new `python` (or the compiled binary) per test, rlimits, a
per-test scratch dir, bubblewrap around it unless isolation is "none".
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xcoder.judge import isolation
from xcoder.judge.procio import drain_and_wait
from xcoder.judge.types import Limits
from xcoder.judge.verdicts import RawRun, parse_call_result

CHILD_SOURCE = (Path(__file__).parent / "child.py").read_text()
RESULT_FILE = ".xcoder_result.json"
BOOTSTRAP = CHILD_SOURCE + (
    "\nimport json\n_job = json.load(open(sys.argv[1]))\n"
    "_fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
    "del sys.argv[1:]\n"
    "run_job(_job, _fd)\n"
)


def rlimit_preexec(limits: Limits, *, address_space: bool):
    """preexec_fn applying the per-test rlimits (inherited by bwrap and the program)."""
    cpu = limits.cpu_s if limits.cpu_s is not None else limits.time_s
    cpu_soft = max(1, math.ceil(cpu))

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_soft + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        if address_space and limits.memory_mb is not None:
            cap = limits.memory_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


def run_oneshot(
    *,
    isolation_mode: str,
    language: str,
    code: str,
    binary: Path | None,
    kind: str,
    fn_name: str | None,
    stdin: str,
    test_code: str | None,
    limits: Limits,
    prelude: bool = False,
) -> RawRun:
    scratch = Path(tempfile.mkdtemp(prefix="xcoder-judge-"))
    try:
        scratch.chmod(0o777)
        stdin_path = scratch / ".stdin"
        stdin_path.write_bytes(stdin.encode())
        if language == "python":
            job = {"kind": kind, "code": code, "fn_name": fn_name, "input": stdin, "test_code": test_code, "prelude": prelude}
            (scratch / ".job.json").write_text(json.dumps(job))
            box = "/box" if isolation_mode == "bwrap" else str(scratch)
            inner = [sys.executable, "-s", "-c", BOOTSTRAP, f"{box}/.job.json", f"{box}/{RESULT_FILE}"]
        else:
            assert binary is not None
            shutil.copyfile(binary, scratch / "prog")
            (scratch / "prog").chmod(0o755)
            inner = ["/box/prog" if isolation_mode == "bwrap" else str(scratch / "prog")]
        env = isolation.sandbox_env()
        seccomp_fd = None
        if isolation_mode == "bwrap":
            if isolation.detect_host().seccomp:
                seccomp_fd = isolation.open_seccomp_fd()
            cmd = isolation.bwrap_command(
                inner, binds=((str(scratch), "/box"),), chdir="/box", env=env, seccomp_fd=seccomp_fd
            )
            cwd = None
        else:
            cmd, cwd = inner, str(scratch)
        start = time.monotonic()
        with open(stdin_path, "rb") as stdin_file:
            try:
                proc = subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    env=env if isolation_mode != "bwrap" else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                    stdin=stdin_file,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    preexec_fn=rlimit_preexec(limits, address_space=True),
                    pass_fds=(seccomp_fd,) if seccomp_fd is not None else (),
                )
            except OSError as exc:
                return RawRun(error=f"cannot start the program: {exc}")
            finally:
                if seccomp_fd is not None:
                    os.close(seccomp_fd)
        raw = drain_and_wait(proc, start=start, wall_limit_s=limits.time_s, output_limit=limits.output_bytes)
        result_path = scratch / RESULT_FILE
        if kind == "call" and result_path.exists():
            raw.result_record = parse_call_result(result_path.read_bytes())
        return raw
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
