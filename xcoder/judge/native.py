"""Build (once, cached) the supervisor's per-test loop, `_zygote.c`, a CPython extension.

The C loop is the judge's only per-test loop, so it is a requirement, like bubblewrap: the
judge refuses to start when it cannot be built here (`NativeBuildError`, one line saying why)
instead of running slower or differently. `scripts/setup.sh` builds it at install time
(`python -m xcoder.judge.native`); a judge started later finds it in the per-user cache.

The wire protocol's numbers reach the C code through `xcoder_protocol.h`, generated from
`protocol.py` into the build directory, so the host and the supervisor cannot disagree. The
shared object is keyed by the C source, that header and the interpreter, and linked into the
judge's C++ cache dir, which every sandbox binds read-only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from xcoder.judge import protocol

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("_zygote.c")
HEADER_NAME = "xcoder_protocol.h"
MODULE_NAME = "_xcoder_zygote"  # PyInit__xcoder_zygote
BUILD_TIMEOUT_S = 120.0
_lock = threading.Lock()
_placed: dict[Path, Path] = {}


class NativeBuildError(RuntimeError):
    """The supervisor's C loop cannot be built on this host: the judge refuses to start."""


def build_command(output: Path, header_dir: Path) -> list[str]:
    include = sysconfig.get_paths()["include"]
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"
    return [cc, "-O2", "-shared", "-fPIC", "-Wall", f"-I{header_dir}", f"-I{include}", "-o", str(output), str(SOURCE)]


def build_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "xcoder" / "judge-native"


def module_filename() -> str:
    """The built module's file name: changes with the source, the protocol and the interpreter."""
    digest = hashlib.sha256(
        SOURCE.read_bytes() + protocol.c_header().encode() + sys.version.encode()
        + sysconfig.get_paths()["include"].encode()
    ).hexdigest()[:16]
    return f"{MODULE_NAME}-{digest}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"


def build() -> Path:
    """The built module in `build_dir()` (built now if missing); NativeBuildError if impossible."""
    built = build_dir() / module_filename()
    if not built.exists():
        built.parent.mkdir(parents=True, exist_ok=True)
        _build(built)
    return built


def shared_object(cache_dir: Path) -> Path:
    """The built module for this interpreter inside `cache_dir` (the dir the sandboxes bind),
    built once per user into `build_dir()`, then linked or copied here."""
    cache_dir = Path(cache_dir)
    with _lock:
        target = _placed.get(cache_dir)
        if target is not None and target.exists():
            return target
        built = build()
        target = cache_dir / built.name
        if not target.exists():
            _place(built, target)
        _placed[cache_dir] = target
        return target


def _place(built: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        os.link(built, tmp)
    except OSError:  # another filesystem
        shutil.copyfile(built, tmp)
        tmp.chmod(0o755)
    os.replace(tmp, target)


def _build(target: Path) -> None:
    why = "build it with `python -m xcoder.judge.native` (scripts/setup.sh does)"
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        raise NativeBuildError(f"the judge's supervisor loop needs the Python headers for {sys.executable} "
                               f"(Debian: apt-get install python3-dev) and a C compiler; {why}")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as work:
        header_dir = Path(work)
        (header_dir / HEADER_NAME).write_text(protocol.c_header())
        tmp = header_dir / target.name
        try:
            proc = subprocess.run(build_command(tmp, header_dir), capture_output=True, text=True,
                                  timeout=BUILD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NativeBuildError(f"cannot build the judge's supervisor loop ({exc}); {why}") from None
        if proc.returncode != 0:
            log.error("compiler output:\n%s", proc.stderr[-4000:])
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise NativeBuildError(f"building the judge's supervisor loop failed ({last}); {why}")
        tmp.chmod(0o755)
        os.replace(tmp, target)  # atomic: concurrent builders race harmlessly
    log.info("judge: built the native supervisor loop %s", target)


def main() -> int:
    """`python -m xcoder.judge.native`: build now (install time); exit 1 with the reason if impossible."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(build())
    except NativeBuildError as exc:
        print(f"xcoder judge: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
