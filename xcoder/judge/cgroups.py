"""cgroup v1 memory + pids groups, one per sandbox worker: real MLE verdicts, fork-bomb caps.

Groups are created *under the judge process's own cgroup* (so the judge never escapes limits
set on itself) and removed on close. cgroup v2 hosts are not supported yet: the judge then
falls back to RLIMIT_AS for memory and RLIMIT_NPROC (per-worker uid) for processes, and says so.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def own_cgroup_path(controller: str) -> str | None:
    """This process's cgroup path in the v1 hierarchy of `controller`, e.g. '/' or '/a/b'."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            return parts[2]
    return None


def _controller_base(controller: str) -> Path | None:
    rel = own_cgroup_path(controller)
    if rel is None:
        return None
    base = CGROUP_ROOT / controller / rel.lstrip("/")
    if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
        return None
    return base


def _remove_stale_siblings(base: Path) -> None:
    """Groups left by a judge process that was killed (name `xcoder-judge-<pid>-...`, pid dead)."""
    try:
        entries = list(base.glob("xcoder-judge-*"))
    except OSError:
        return
    for entry in entries:
        try:
            pid = int(entry.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        try:
            entry.rmdir()  # only succeeds when empty: never touches a live sandbox
        except OSError:
            pass


class WorkerCgroup:
    """Memory and pids cgroups for one sandbox worker (all its processes, supervisor included)."""

    def __init__(self, name: str, *, use_memory: bool, use_pids: bool) -> None:
        self.memory: Path | None = None
        self.pids: Path | None = None
        if use_memory and (base := _controller_base("memory")) is not None:
            self.memory = self._make(base / name)
        if use_pids and (base := _controller_base("pids")) is not None:
            self.pids = self._make(base / name)
        self._limit_bytes: int | None = -2
        self._pids_max: int | None = None

    @staticmethod
    def _make(path: Path) -> Path | None:
        _remove_stale_siblings(path.parent)
        try:
            path.mkdir(exist_ok=True)
            return path
        except OSError as exc:
            log.warning("cannot create cgroup %s: %s", path, exc)
            return None

    def procs_files(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in (self.memory, self.pids) if p is not None]

    # -- memory ----------------------------------------------------------------------------------
    def usage_bytes(self) -> int:
        return int((self.memory / "memory.usage_in_bytes").read_text()) if self.memory else 0

    def set_memory_limit(self, limit_bytes: int | None) -> None:
        """Set the hard limit (None = unlimited); memsw too where swap accounting exists."""
        if self.memory is None or limit_bytes == self._limit_bytes:
            return
        value = "-1" if limit_bytes is None else str(limit_bytes)
        memsw = self.memory / "memory.memsw.limit_in_bytes"
        has_memsw = memsw.exists()
        # memsw must stay >= limit: raise memsw first when raising, lower limit first when lowering
        raising = limit_bytes is None or (self._limit_bytes not in (None, -2) and limit_bytes > self._limit_bytes)
        order = [(memsw, value), (self.memory / "memory.limit_in_bytes", value)]
        if not raising:
            order.reverse()
        for path, val in order:
            if path is memsw and not has_memsw:
                continue
            for attempt in range(50):
                try:
                    path.write_text(val)
                    break
                except OSError:  # EBUSY: usage above the new limit (a dying process); retry
                    if attempt == 49:
                        raise
                    time.sleep(0.01)
        self._limit_bytes = limit_bytes

    def open_oom_control(self) -> int | None:
        """A read-only fd on memory.oom_control (its "oom_kill N" counter), for the supervisor to
        attribute OOM kills to the test that was running; None without a memory cgroup."""
        if self.memory is None:
            return None
        try:
            return os.open(self.memory / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot open %s: %s", self.memory / "memory.oom_control", exc)
            return None

    def reset_peak(self) -> None:
        if self.memory is not None:
            (self.memory / "memory.max_usage_in_bytes").write_text("0")

    def peak_bytes(self) -> int:
        return int((self.memory / "memory.max_usage_in_bytes").read_text()) if self.memory else 0

    # -- pids ------------------------------------------------------------------------------------
    def set_pids_max(self, count: int) -> None:
        if self.pids is None or count == self._pids_max:
            return
        (self.pids / "pids.max").write_text(str(count))
        self._pids_max = count

    def pid_count(self) -> int:
        return int((self.pids / "pids.current").read_text()) if self.pids else 0

    # -- lifecycle -------------------------------------------------------------------------------
    def destroy(self, timeout_s: float = 5.0) -> None:
        """Remove the groups (they must be empty: the worker's processes are dead)."""
        for path in (self.memory, self.pids):
            if path is None:
                continue
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        log.warning("cannot remove cgroup %s: %s", path, exc)
                        break
                    time.sleep(0.02)
        self.memory = self.pids = None
