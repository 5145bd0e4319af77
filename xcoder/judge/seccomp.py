"""A small seccomp deny-list for the sandbox (classic BPF, x86_64), handed to bubblewrap.

Namespaces + an unprivileged uid already block most of this; the filter shrinks the kernel
attack surface a program can reach: no new namespaces (the usual first step of a kernel exploit
chain), no ptrace / process_vm_*, no mount, keyring, bpf, perf, userfaultfd, io_uring, module
loading. Everything a judged program legitimately does (threads, fork/exec, pipes, mmap, sockets
inside the empty network namespace) stays allowed. Other architectures: no filter (logged).
"""

from __future__ import annotations

import errno
import os
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
CLONE_NAMESPACE_FLAGS = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

# x86_64 syscall numbers
DENIED = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "swapon": 167, "swapoff": 168,
    "reboot": 169, "sethostname": 170, "setdomainname": 171, "acct": 163, "quotactl": 179,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320,
    "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "unshare": 272, "setns": 308, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
    "mount_setattr": 442, "syslog": 103, "vhangup": 153, "iopl": 172, "ioperm": 173,
    # System V IPC objects and POSIX message queues outlive the process that made them: a test
    # could leave state for the next one (same worker, same uid). Nothing judged needs them.
    "shmget": 29, "semget": 64, "msgget": 68, "mq_open": 240,
}
CLONE = 56
CLONE3 = 435  # flags live in a struct the filter cannot read: ENOSYS makes glibc fall back to clone

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000


def _errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def supported() -> bool:
    return platform.machine() == "x86_64"


def build_filter() -> bytes:
    """The compiled BPF program (struct sock_filter[]) for `bwrap --seccomp FD`."""
    prog: list[tuple[int, int, int, int]] = []  # (code, jt, jf, k); jumps patched below
    fixups: list[tuple[int, str, str]] = []  # (index, jt label, jf label)

    def emit(code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        if jt or jf:
            fixups.append((len(prog), jt or "next", jf or "next"))
        prog.append((code, 0, 0, k))

    emit(_LD_W_ABS, 4)  # arch
    emit(_JEQ_K, AUDIT_ARCH_X86_64, jt="next", jf="kill")
    emit(_LD_W_ABS, 0)  # syscall number
    emit(_JGE_K, X32_SYSCALL_BIT, jt="deny", jf="next")
    for number in sorted(DENIED.values()):
        emit(_JEQ_K, number, jt="deny", jf="next")
    emit(_JEQ_K, CLONE3, jt="enosys", jf="next")
    emit(_JEQ_K, CLONE, jt="next", jf="allow")
    emit(_LD_W_ABS, 16)  # clone: args[0] low 32 bits = flags (classic BPF only jumps forward)
    emit(_JSET_K, CLONE_NAMESPACE_FLAGS, jt="deny", jf="allow")
    labels = {}
    labels["allow"] = len(prog)
    prog.append((_RET_K, 0, 0, _RET_ALLOW))
    labels["deny"] = len(prog)
    prog.append((_RET_K, 0, 0, _errno(errno.EPERM)))
    labels["enosys"] = len(prog)
    prog.append((_RET_K, 0, 0, _errno(errno.ENOSYS)))
    labels["kill"] = len(prog)
    prog.append((_RET_K, 0, 0, _RET_KILL_PROCESS))
    for index, jt, jf in fixups:
        code, _, _, k = prog[index]
        rel = [0 if lab == "next" else labels[lab] - index - 1 for lab in (jt, jf)]
        if not all(0 <= r <= 255 for r in rel):
            raise ValueError("seccomp filter jump out of range")
        prog[index] = (code, rel[0], rel[1], k)
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


def filter_fd() -> int:
    """A fresh read fd on the compiled filter, for `bwrap --seccomp FD` (bwrap reads it to the
    end). A memfd, not a file: nothing is left in /tmp by any process that starts sandboxes."""
    global _FILTER
    if _FILTER is None:
        _FILTER = build_filter()
    fd = os.memfd_create("xcoder-seccomp", os.MFD_CLOEXEC)  # handed to bwrap through pass_fds
    try:
        view = memoryview(_FILTER)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


_FILTER: bytes | None = None
