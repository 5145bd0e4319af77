"""C++17 compilation: `g++ -O2`, once per distinct program (content-hash cache), sandboxed.

The compiler runs in the same sandbox as programs (a source can `#include` any readable file,
so compiling untrusted code is itself untrusted work).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from xcoder.judge import isolation

CXX_FLAGS = ("-std=c++17", "-O2", "-pipe")  # X-Coder code-judge compiles with -O2 [judge-semantics §5]
COMPILE_TIMEOUT_S = 30.0
COMPILE_MEMORY_BYTES = 2 << 30


@dataclasses.dataclass(frozen=True)
class CompileResult:
    ok: bool
    binary: Path | None  # cached executable (ok only)
    message: str  # compiler diagnostics (CE) or judge error (SE)
    system_error: bool = False  # the judge failed, not the program
    seconds: float = 0.0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "xcoder" / "judge-cpp"


class CppCompiler:
    """Thread-safe compile cache keyed by sha256(flags + source)."""

    def __init__(self, cache_dir: Path | None, isolation_mode: str) -> None:
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.chmod(0o755)
        self.isolation_mode = isolation_mode
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def key(source: str) -> str:
        return hashlib.sha256(("\0".join(CXX_FLAGS) + "\0" + source).encode()).hexdigest()[:32]

    def compile(self, source: str) -> CompileResult:
        key = self.key(source)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            binary, error_file = self.cache_dir / key, self.cache_dir / f"{key}.ce"
            if binary.exists():
                return CompileResult(True, binary, "")
            if error_file.exists():
                return CompileResult(False, None, error_file.read_text(errors="replace"))
            return self._compile(source, binary, error_file)

    def _compile(self, source: str, binary: Path, error_file: Path) -> CompileResult:
        if shutil.which("g++") is None:
            return CompileResult(False, None, "g++ not found on this host", system_error=True)
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="xcoder-cc-") as build:
            Path(build, "prog.cpp").write_text(source)
            inner = ["g++", *CXX_FLAGS, "prog.cpp", "-o", "prog"]
            seccomp_fd = None
            if self.isolation_mode == "bwrap":
                if isolation.detect_host().seccomp:
                    seccomp_fd = isolation.open_seccomp_fd()
                cmd = isolation.bwrap_command(
                    inner, binds=((build, "/build"),), chdir="/build", env=isolation.sandbox_env(),
                    seccomp_fd=seccomp_fd,
                )
                cwd = None
            else:
                cmd, cwd = inner, build
            try:
                proc = subprocess.run(
                    cmd,
                    cwd=cwd,
                    capture_output=True,
                    timeout=COMPILE_TIMEOUT_S,
                    preexec_fn=_compile_rlimits,
                    pass_fds=(seccomp_fd,) if seccomp_fd is not None else (),
                )
            except subprocess.TimeoutExpired:
                return CompileResult(False, None, f"compilation exceeded {COMPILE_TIMEOUT_S:g} s",
                                     seconds=COMPILE_TIMEOUT_S)
            except OSError as exc:
                return CompileResult(False, None, f"cannot start the compiler: {exc}", system_error=True)
            finally:
                if seccomp_fd is not None:
                    os.close(seccomp_fd)
            seconds = time.monotonic() - start
            message = proc.stderr.decode("utf-8", errors="replace")
            if proc.returncode != 0 or not Path(build, "prog").exists():
                if "bwrap:" in message and self.isolation_mode == "bwrap" and not Path(build, "prog.cpp").exists():
                    return CompileResult(False, None, message, system_error=True, seconds=seconds)
                _atomic_write(error_file, message.encode())
                return CompileResult(False, None, message, seconds=seconds)
            tmp = binary.with_suffix(".tmp")
            shutil.copyfile(Path(build, "prog"), tmp)
            tmp.chmod(0o755)
            os.replace(tmp, binary)
        return CompileResult(True, binary, message, seconds=seconds)


def _compile_rlimits() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (COMPILE_MEMORY_BYTES, COMPILE_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
