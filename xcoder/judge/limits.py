"""What a test's `Limits` become in the sandbox, decided here and nowhere else.

Two mechanisms enforce them: the worker's cgroups (memory -> MLE, pids -> fork bombs), set by
the host between tests with different limits (`cgroup_limits`), and the rlimits the supervisor's
C loop sets in each forked test process before any program code runs (`rlimits_for`, carried
by the TEST frame). The wall limit and the output limit travel in the same frame and are
enforced by the supervisor while the test runs. The C++ compiler's own limits are the
compiler's business (`cpp.py`), not a test's.
"""

from __future__ import annotations

import dataclasses
import functools
import math

from xcoder.judge.types import Limits

# Main-thread stack: C++ gets all of it (deep recursion works as on most online judges); a forked
# Python child can grow ~128 MiB (the gap below the stack the kernel left at supervisor start).
STACK_BYTES = 512 << 20
MIN_STACK_BYTES = 8 << 20
PIDS_HEADROOM = 3  # the supervisor, the namespace's init and the test process itself


@dataclasses.dataclass(frozen=True)
class TestRlimits:
    """The rlimits of one test process (the TEST frame's limit fields)."""

    __test__ = False  # not a pytest class

    wall_ns: int
    cpu_s: int  # RLIMIT_CPU soft limit (hard = soft + 1: SIGXCPU first, then SIGKILL)
    file_size: int  # RLIMIT_FSIZE
    open_files: int  # RLIMIT_NOFILE
    processes: int  # RLIMIT_NPROC (counted per uid: every worker has its own)
    stack: int  # RLIMIT_STACK
    address_space: int  # RLIMIT_AS, 0 = none (the memory cgroup limits memory instead)
    output_bytes: int  # stdout + stderr, killed beyond (OLE)


@functools.lru_cache(maxsize=256)  # per test on the host: a handful of distinct limits per run
def rlimits_for(limits: Limits, *, memory_cgroup: bool) -> TestRlimits:
    """`limits` as the C loop applies them (`memory_cgroup`: the worker's cgroup holds the
    memory limit; without one, RLIMIT_AS stands in for it)."""
    memory_mb = None if limits.memory_mb is None else int(limits.memory_mb)
    cpu = limits.cpu_s if limits.cpu_s is not None else limits.time_s
    stack = STACK_BYTES if memory_mb is None else min(STACK_BYTES, max(MIN_STACK_BYTES, memory_mb << 20))
    return TestRlimits(
        wall_ns=int(float(limits.time_s) * 1e9),
        cpu_s=max(1, math.ceil(cpu)),
        file_size=int(limits.file_size_bytes),
        open_files=int(limits.open_files),
        processes=int(limits.max_processes),
        stack=stack,
        address_space=(memory_mb << 20) if (memory_mb is not None and not memory_cgroup) else 0,
        output_bytes=int(limits.output_bytes),
    )


def cgroup_limits(limits: Limits) -> tuple[int | None, int]:
    """(memory MiB above the worker's baseline or None, pids.max) for the worker's cgroups.
    Tests whose values differ never share a worker's queue (it is the pool's scheduling key)."""
    return (None if limits.memory_mb is None else int(limits.memory_mb), int(limits.max_processes) + PIDS_HEADROOM)
