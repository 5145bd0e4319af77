"""Host sandbox support: detect what the machine offers and build the bubblewrap command.

Modes: `auto` (bubblewrap if it works here, else refuse: fail closed), `bwrap` (require it),
`none` (no sandbox at all: UNSAFE, for trusted code on dev machines only). The threat model is
in `xcoder/judge/README.md`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from xcoder.judge import seccomp

log = logging.getLogger(__name__)

ISOLATION_MODES = ("auto", "bwrap", "none")

# Capabilities kept by the trusted in-sandbox supervisor (the warm interpreter). It drops to an
# unprivileged uid before running any program, which clears them for the program.
SUPERVISOR_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN")


class IsolationError(RuntimeError):
    """The requested isolation is not available on this host (we refuse to run unsandboxed)."""


@dataclasses.dataclass(frozen=True)
class HostSupport:
    bwrap: str | None  # path of a working bwrap binary
    bwrap_error: str  # why bwrap is unusable, if it is
    is_root: bool
    cgroup_memory: Path | None  # writable cgroup v1 memory hierarchy root
    cgroup_pids: Path | None  # writable cgroup v1 pids hierarchy root
    seccomp: bool = False  # bwrap accepted our seccomp deny-list here

    def describe(self) -> str:
        parts = [f"bwrap={'yes' if self.bwrap else 'no (' + self.bwrap_error + ')'}"]
        parts.append(f"seccomp={'yes' if self.seccomp else 'no'}")
        parts.append(f"root={'yes' if self.is_root else 'no'}")
        parts.append(f"cgroup-memory={'yes' if self.cgroup_memory else 'no'}")
        parts.append(f"cgroup-pids={'yes' if self.cgroup_pids else 'no'}")
        return ", ".join(parts)


def _writable_cgroup_v1(controller: str) -> Path | None:
    root = Path("/sys/fs/cgroup") / controller
    if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
        return None
    probe = root / f"xcoder-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError:
        return None
    return root


@functools.cache
def detect_host() -> HostSupport:
    """Probe once per process: can we start a bwrap sandbox without network, as root or not?"""
    bwrap = shutil.which("bwrap")
    error = "" if bwrap else "bwrap not on PATH (Debian: apt-get install bubblewrap)"
    if bwrap:
        try:
            proc = subprocess.run(
                [bwrap, *base_bwrap_args(), "--", "/bin/true"], capture_output=True, timeout=20, text=True
            )
            if proc.returncode != 0:
                error = f"bwrap self-test failed: {proc.stderr.strip()[:300]}"
                bwrap = None
        except (OSError, subprocess.TimeoutExpired) as exc:
            error, bwrap = f"bwrap self-test failed: {exc}", None
    is_root = os.geteuid() == 0
    seccomp_ok = False
    if bwrap and seccomp.supported():
        fd = open_seccomp_fd()
        try:
            proc = subprocess.run(
                [bwrap, *base_bwrap_args(), "--seccomp", str(fd), "--", "/bin/true"],
                capture_output=True, timeout=20, text=True, pass_fds=(fd,),
            )
            seccomp_ok = proc.returncode == 0
            if not seccomp_ok:
                log.warning("bwrap refused the seccomp filter: %s", proc.stderr.strip()[:300])
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("seccomp self-test failed: %s", exc)
        finally:
            os.close(fd)
    support = HostSupport(
        bwrap=bwrap,
        bwrap_error=error,
        is_root=is_root,
        cgroup_memory=_writable_cgroup_v1("memory") if is_root else None,
        cgroup_pids=_writable_cgroup_v1("pids") if is_root else None,
        seccomp=seccomp_ok,
    )
    log.info("judge host support: %s", support.describe())
    return support


def resolve_isolation(mode: str) -> str:
    """Map the configured mode to the one we will use ("bwrap" or "none"), or fail closed."""
    if mode not in ISOLATION_MODES:
        raise IsolationError(f"unknown judge isolation {mode!r}; choose one of {ISOLATION_MODES}")
    if mode == "none":
        log.warning("judge isolation=none: programs run UNSANDBOXED (UNSAFE; trusted code only)")
        return "none"
    support = detect_host()
    if support.bwrap is None:
        raise IsolationError(
            f"judge isolation={mode!r} needs bubblewrap, which is unusable here: {support.bwrap_error}. "
            "Install it (scripts/setup.sh / apt-get install bubblewrap) or set judge.isolation=none "
            "explicitly to run programs UNSANDBOXED (unsafe)."
        )
    return "bwrap"


def interpreter_paths() -> list[str]:
    """Directories the sandboxed Python needs: its install prefix and, for a venv, the venv."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    return sorted(p for p in paths if p and not p.startswith("/usr"))


def base_bwrap_args(extra_ro: tuple[str, ...] = ()) -> list[str]:
    """Read-only system dirs, empty /tmp, fresh /proc and /dev, no network, own pid/ipc/uts
    namespaces, new session (no TIOCSTI), dies with its parent. No user namespace: the
    in-sandbox supervisor must map to a real unprivileged uid for RLIMIT_NPROC to apply."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/passwd", "/etc/group"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    # The private /tmp comes first: an interpreter or venv that lives under /tmp (a CI clone)
    # is then bound on top of it instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    made: set[str] = {"/tmp"}
    for path in (*interpreter_paths(), *extra_ro):
        # parents that bwrap would create with mode 0700 (e.g. /root): make them traversable
        for parent in reversed(Path(path).parents):
            if str(parent) != "/" and str(parent) not in made and not str(parent).startswith("/usr"):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", path, path]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    return args


def open_seccomp_fd() -> int:
    """A fresh read fd on the compiled filter (bwrap reads it to the end); the caller passes it
    to the child (pass_fds) and closes it after spawning."""
    return seccomp.filter_fd()


def bwrap_command(
    inner: list[str],
    *,
    binds: tuple[tuple[str, str], ...] = (),
    ro_binds: tuple[tuple[str, str], ...] = (),
    caps: tuple[str, ...] = (),
    chdir: str = "/tmp",
    env: dict[str, str] | None = None,
    seccomp_fd: int | None = None,
) -> list[str]:
    support = detect_host()
    if support.bwrap is None:
        raise IsolationError(f"bubblewrap unusable: {support.bwrap_error}")
    args = [support.bwrap, *base_bwrap_args()]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    for src, dst in ro_binds:
        args += ["--ro-bind", src, dst]
    for src, dst in binds:
        args += ["--bind", src, dst]
    args += ["--cap-drop", "ALL"]
    for cap in caps:
        args += ["--cap-add", cap]
    args += ["--clearenv"]
    for key, value in (env or {}).items():
        args += ["--setenv", key, value]
    args += ["--chdir", chdir, "--", *inner]
    return args


def sandbox_env() -> dict[str, str]:
    """Environment for programs: minimal, UTF-8, single-threaded BLAS (thread start-up under a
    memory limit breaks numpy/OpenBLAS otherwise; judge-semantics §7.2)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": "/tmp",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def supervisor_env() -> dict[str, str]:
    """`sandbox_env` plus LD_BIND_NOW for the warm supervisor: every symbol is bound at start-up,
    so a forked test process never writes the GOT on a first call (~15 fewer copy-on-write faults
    per test). The supervisor drops the variable before its first fork: programs never see it."""
    return dict(sandbox_env(), LD_BIND_NOW="1")
