"""Build (once, cached) the supervisor's native per-test loop, `_zygote.c`.

The warm supervisor runs the same protocol in pure Python when this returns None (no C compiler,
no Python headers, or `XCODER_JUDGE_NATIVE=0`): the native loop is an accelerator, never a
requirement. The shared object lands in the judge's C++ cache dir, which every sandbox already
binds read-only, keyed by the source and the interpreter it is built for.
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

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("_zygote.c")
MODULE_NAME = "_xcoder_zygote"  # PyInit__xcoder_zygote
BUILD_TIMEOUT_S = 120.0
ENV_SWITCH = "XCODER_JUDGE_NATIVE"  # "0" = always use the Python loop
_lock = threading.Lock()
_built: dict[Path, Path | None] = {}


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


def build_command(output: Path) -> list[str]:
    include = sysconfig.get_paths()["include"]
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"
    return [cc, "-O2", "-shared", "-fPIC", "-Wall", f"-I{include}", "-o", str(output), str(SOURCE)]


def build_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "xcoder" / "judge-native"


def shared_object(cache_dir: Path) -> Path | None:
    """Path of the built module for this interpreter inside `cache_dir` (the dir the sandboxes
    bind), or None. Built once per user into `build_dir()`, then linked or copied here."""
    if not enabled():
        return None
    cache_dir = Path(cache_dir)
    with _lock:
        if cache_dir in _built:
            return _built[cache_dir]
        digest = hashlib.sha256(
            SOURCE.read_bytes() + sys.version.encode() + sysconfig.get_paths()["include"].encode()
        ).hexdigest()[:16]
        name = f"{MODULE_NAME}-{digest}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"
        built = build_dir() / name
        if not built.exists():
            built.parent.mkdir(parents=True, exist_ok=True)
            if _build(built) is None:
                _built[cache_dir] = None
                return None
        target = cache_dir / name
        if not target.exists():
            _place(built, target)
        _built[cache_dir] = target
        return target


def _place(built: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        os.link(built, tmp)
    except OSError:  # another filesystem
        shutil.copyfile(built, tmp)
        tmp.chmod(0o755)
    os.replace(tmp, target)


def _build(target: Path) -> Path | None:
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        log.warning("judge: no Python headers for %s; the supervisor runs its Python loop (slower)", sys.executable)
        return None
    fd, tmp_name = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        proc = subprocess.run(build_command(tmp), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            log.warning("judge: building the native supervisor loop failed; using the Python loop (slower):\n%s",
                        proc.stderr[-2000:])
            return None
        tmp.chmod(0o755)
        os.replace(tmp, target)  # atomic: concurrent builders race harmlessly
        log.info("judge: built the native supervisor loop %s", target)
        return target
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("judge: cannot build the native supervisor loop (%s); using the Python loop (slower)", exc)
        return None
    finally:
        tmp.unlink(missing_ok=True)
