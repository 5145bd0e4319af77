"""Host side of the warm executor: one sandboxed supervisor (`zygote.py`) per worker.

Each worker is a bubblewrap sandbox (no network, own pid namespace, read-only system) holding a
warm Python interpreter that forks a fresh child per test, in its own cgroup v1 memory + pids
group when the host allows (real MLE verdicts, fork bombs capped). The host creates the test's
pipes and a memfd with stdin, passes them to the supervisor over a unix socket (SCM_RIGHTS),
and streams stdout/stderr while the program runs.
"""

from __future__ import annotations

import atexit
import collections
import fcntl
import itertools
import json
import logging
import marshal
import math
import os
import queue
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from xcoder.judge import isolation
from xcoder.judge.cgroups import WorkerCgroup
from xcoder.judge.types import Limits
from xcoder.judge.verdicts import RawRun

log = logging.getLogger(__name__)

_SRC_DIR = Path(__file__).parent
SUPERVISOR_SOURCE = (
    (_SRC_DIR / "child.py").read_text()
    + "\n"
    + (_SRC_DIR / "zygote.py").read_text()
    + """
_job, _result_fd = zygote_main()
# sys.std* are the interpreter's own start-up objects (never used by the supervisor) over fds
# 0/1/2, which now are the test's stdin memfd and stdout/stderr pipes: as fresh as in a new process
if _job["language"] == "cpp":
    os.execv(_job["binary"], [_job["binary"]])
run_as_main(_job, _result_fd)
"""
)
# The supervisor is started from its *marshalled* code object (read from an inherited memfd whose
# number is argv[1]) rather than `-c SOURCE`: compiling ~25 KB of source inside the sandbox left
# ~1.5 MB of freed parser memory in the supervisor's heap, and every fork copies (and every exit
# tears down) the page-table entries of all touched pages. Same interpreter on both sides, and
# the filename stays "<string>" as for `-c` (tracebacks are trimmed by it).
SUPERVISOR_BOOT = (
    "import marshal, os, sys\n"
    "_fd = int(sys.argv.pop(1))\n"
    "_code = marshal.loads(os.pread(_fd, os.fstat(_fd).st_size, 0))\n"
    "os.close(_fd)\n"
    "del _fd\n"
    "exec(_code)\n"
)
_supervisor_code: bytes | None = None


def _supervisor_code_fd() -> int:
    """A memfd holding the marshalled supervisor (compiled once per host process)."""
    global _supervisor_code
    if _supervisor_code is None:
        _supervisor_code = marshal.dumps(compile(SUPERVISOR_SOURCE, "<string>", "exec"))
    fd = os.memfd_create("xcoder-judge-supervisor")  # inheritable only through pass_fds
    view = memoryview(_supervisor_code)
    while view:
        view = view[os.write(fd, view) :]
    return fd


STACK_BYTES = 512 << 20  # main-thread stack limit (C++ gets it all; a forked Python child can grow ~128 MiB)
START_TIMEOUT_S = 60.0
SETUP_ERROR_PREFIX = b"\0xcoder-setup-error:"  # same bytes as zygote.SETUP_ERROR_PREFIX
HOST_GRACE_S = 10.0
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # beyond the wall limit before we declare the supervisor stuck (SE)
# Wire format with the supervisor (zygote.py docstring; _zygote.c): little-endian fixed records.
JOB_MAGIC, REPORT_MAGIC = 0x314A4358, 0x31524358
JOB_HEADER = struct.Struct("<IIQiiQQQQQQQII")  # magic flags id slot uid wall_ns cpu_s fsize nofile nproc stack as prep test
REPORT = struct.Struct("<IIQiiQQQQQQQ")  # magic flags id status pad wall_ns cpu_ns maxrss_kb minflt fork/total/sweep ns
FLAG_PREPARE, FLAG_KILL = 1, 2
REPORT_TIMED_OUT, REPORT_KILLED_BY_HOST, REPORT_CLEAN, REPORT_ERROR = 1, 2, 4, 8
PROGRAM_SLOTS = 32  # programs a supervisor keeps compiled (least recently used is replaced)
_uid_counter = itertools.count()
_live_pools: "weakref.WeakSet[WarmPool]" = weakref.WeakSet()


@atexit.register
def _close_live_pools() -> None:
    """Judges never closed by their owner still must not leave sandboxes or cgroups behind."""
    for pool in list(_live_pools):
        pool.close()


def _program_uid(index: int) -> int:
    """A distinct unprivileged uid per worker (RLIMIT_NPROC is counted per uid)."""
    return 200_000 + (os.getpid() % 50_000) * 64 + (next(_uid_counter) % 64)


class WorkerDied(RuntimeError):
    pass


class WarmWorker:
    def __init__(
        self, index: int, isolation_mode: str, cpp_dir: Path, profile: str = "lean", native_so: Path | None = None
    ) -> None:
        self.index = index
        self.native_so = native_so  # the supervisor's C loop (in cpp_dir), or None: its Python loop
        self.native = False  # what the running supervisor reported
        self._programs: collections.OrderedDict[tuple, int] = collections.OrderedDict()  # program -> slot
        # hand-over / collection order of overlapping tests (see `run`)
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._turn = 0
        self._in_flight = 0
        self._incarnation = 0
        self._cgroup_key: tuple | None = None
        self.profile = profile
        self.isolation_mode = isolation_mode
        self.cpp_dir = cpp_dir
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.cgroup: WorkerCgroup | None = None
        self.baseline_bytes = 0
        self.tests_run = 0
        self._ids = itertools.count()
        self._scratch_base: tempfile.TemporaryDirectory | None = None
        self._log: collections.deque[bytes] = collections.deque(maxlen=64)
        self._log_thread: threading.Thread | None = None
        self.start()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        support = isolation.detect_host()
        is_root = os.geteuid() == 0
        # isolation=none runs on the host's filesystem, where a foreign uid may not even read the
        # interpreter (e.g. under /root): only the sandbox drops to a dedicated uid
        self.uid = _program_uid(self.index) if (is_root and self.isolation_mode == "bwrap") else None
        name = f"xcoder-judge-{os.getpid()}-{self.index}-{time.monotonic_ns() % 10**9}"
        self.cgroup = WorkerCgroup(
            name, use_memory=support.cgroup_memory is not None, use_pids=support.cgroup_pids is not None
        )
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl = child_sock.fileno()  # inherited under the same number (pass_fds)
        code_fd = _supervisor_code_fd()
        pass_fds = [ctl, code_fd]
        seccomp_fd = None
        native_arg = "-"
        if self.native_so is not None:
            native_arg = f"/cpp/{self.native_so.name}" if self.isolation_mode == "bwrap" else str(self.native_so)
        if self.isolation_mode == "bwrap":
            if support.seccomp:
                seccomp_fd = isolation.open_seccomp_fd()
                pass_fds.append(seccomp_fd)
            inner = [
                sys.executable, "-s", "-c", SUPERVISOR_BOOT, str(code_fd), str(ctl), "ns", "/tmp", self.profile, native_arg
            ]
            cmd = isolation.bwrap_command(
                inner,
                ro_binds=((str(self.cpp_dir), "/cpp"),),
                caps=isolation.SUPERVISOR_CAPS,
                env=isolation.supervisor_env(),
                chdir="/tmp",
                seccomp_fd=seccomp_fd,
            )
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            self._scratch_base = tempfile.TemporaryDirectory(prefix="xcoder-judge-")
            os.chmod(self._scratch_base.name, 0o1777)
            inner = [
                sys.executable, "-s", "-c", SUPERVISOR_BOOT, str(code_fd), str(ctl), "none", self._scratch_base.name,
                self.profile, native_arg,
            ]
            cmd, env = inner, isolation.supervisor_env()
        procs_files = self.cgroup.procs_files()

        def preexec() -> None:
            for path in procs_files:
                with open(path, "w") as fh:
                    fh.write(str(os.getpid()))

        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                # a pipe, not a file: the supervisor's own sys.stdout/stderr objects are inherited
                # by every child and must look like a pipe (not seekable), as under `python3 prog.py | ...`
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=tuple(pass_fds),
                preexec_fn=preexec,
                start_new_session=True,
            )
        finally:
            os.close(code_fd)
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        child_sock.close()
        self._log.clear()
        self._log_thread = threading.Thread(
            target=self._drain_log, args=(self.proc.stdout,), name=f"judge-log-{self.index}", daemon=True
        )
        self._log_thread.start()
        self.sock = parent_sock
        self.sock.settimeout(START_TIMEOUT_S)
        try:
            hello = self._recv_frame()
        except (OSError, EOFError, socket.timeout) as exc:
            tail = self.log_tail()
            self.stop()
            raise WorkerDied(f"judge worker {self.index} did not start: {exc}; log: {tail}") from exc
        self.sock.settimeout(None)
        if not hello.get("ready"):
            self.stop()
            raise WorkerDied(f"judge worker {self.index} sent {hello!r} instead of ready")
        self.native = bool(hello.get("native"))
        self._programs.clear()  # a new supervisor holds no compiled program
        self._incarnation += 1  # tests handed to the previous supervisor are lost: they fail as SE
        self._cgroup_key = None
        self.baseline_bytes = self.cgroup.usage_bytes()
        self._oom_seen = self.cgroup.oom_kills()
        self.tests_run = 0

    def log_tail(self) -> str:
        if self._log_thread is not None:
            self._log_thread.join(timeout=0.5)  # a dying supervisor's last words
        return b"".join(self._log).decode("utf-8", "replace")[-2000:]

    def _drain_log(self, stream) -> None:
        for line in iter(stream.readline, b""):
            self._log.append(line)
        stream.close()

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.error("judge worker %d (pid %d) did not die", self.index, self.proc.pid)
            self.proc = None
        if self.cgroup is not None:
            self.cgroup.destroy()
            self.cgroup = None
        if self._scratch_base is not None:
            self._scratch_base.cleanup()
            self._scratch_base = None
        if self._log_thread is not None:
            self._log_thread.join(timeout=2)
            self._log_thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- framing -------------------------------------------------------------------------------
    def _recv_exact(self, count: int) -> bytes:
        assert self.sock is not None
        data = bytearray()
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise EOFError("judge worker closed its control socket")
            data += chunk
        return bytes(data)

    def _recv_body(self) -> bytes:
        length = int.from_bytes(self._recv_exact(4), "big")
        return self._recv_exact(length)

    def _recv_frame(self) -> dict:
        """The start-up hello (marshalled; every later frame is a fixed-size report)."""
        return marshal.loads(self._recv_body())

    def _recv_report(self) -> dict:
        body = self._recv_body()
        if len(body) != REPORT.size:
            raise ValueError(f"report of {len(body)} bytes, expected {REPORT.size}")
        magic, flags, test_id, status, _pad, wall, cpu, maxrss, minflt, fork, total, sweep = REPORT.unpack(body)
        if magic != REPORT_MAGIC:
            raise ValueError(f"bad report magic {magic:#x}")
        return {
            "id": test_id, "flags": flags, "status": status, "wall_s": wall / 1e9, "cpu_s": cpu / 1e9,
            "maxrss_kb": maxrss, "minflt": minflt, "fork_s": fork / 1e9, "total_s": total / 1e9, "sweep_s": sweep / 1e9,
            "timed_out": bool(flags & REPORT_TIMED_OUT), "clean": bool(flags & REPORT_CLEAN),
        }

    def _send_kill(self, test_id: int) -> None:
        """Kill test `test_id` early (output limit); ignored if it has already ended."""
        assert self.sock is not None
        body = JOB_HEADER.pack(JOB_MAGIC, FLAG_KILL, test_id, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        self.sock.sendall(len(body).to_bytes(4, "big") + body)

    # -- one test ------------------------------------------------------------------------------
    def _slot_for(self, program: dict) -> tuple[int, bool]:
        """The supervisor slot holding `program`, and whether it must be (re)sent. Assert tests
        differ per test (the test code is part of the program): always sent, in slot 0."""
        if program.get("kind") == "assert":
            return 0, True
        key = tuple(sorted(program.items()))
        slot = self._programs.get(key)
        if slot is not None:
            self._programs.move_to_end(key)
            return slot, False
        if len(self._programs) >= PROGRAM_SLOTS:
            _, slot = self._programs.popitem(last=False)
        else:
            used = set(self._programs.values())
            slot = next(i for i in range(1, PROGRAM_SLOTS + 1) if i not in used)
        self._programs[key] = slot
        return slot, True

    def run(self, program: dict, test_payload: bytes, stdin: bytes, limits: Limits) -> RawRun:
        """One test: `program` (language, kind, code, ...; compiled once per slot in the
        supervisor), `test_payload` (a call-kind test's input), `stdin`.

        Thread-safe, and two callers may overlap: the second test is handed over while the first
        runs and waits in the supervisor, which starts it the moment the first is reported (no
        idle gap while this process turns one result into the next test). Results are collected
        in hand-over order; a queued test never shares the worker's cgroup limits with a running
        test that has different ones (it waits until the worker is idle instead)."""
        mem = None if limits.memory_mb is None else int(limits.memory_mb)
        cpu = limits.cpu_s if limits.cpu_s is not None else limits.time_s
        stack = STACK_BYTES if mem is None else min(STACK_BYTES, max(8 << 20, mem << 20))
        pids_max = int(limits.max_processes) + 3  # + supervisor, bwrap init, monitor
        with self._cond:
            while self._in_flight and self._cgroup_key != (mem, pids_max):
                self._cond.wait()
            if self.proc is None or self.proc.poll() is not None:
                self.restart()
            assert self.sock is not None and self.cgroup is not None
            has_memcg = self.cgroup.memory is not None
            slot, send_program = self._slot_for(program)
            test_id = next(self._ids)
            prep = marshal.dumps(program) if send_program else b""
            header = JOB_HEADER.pack(
                JOB_MAGIC, FLAG_PREPARE if send_program else 0, test_id, slot,
                -1 if self.uid is None else self.uid,
                int(float(limits.time_s) * 1e9),
                max(1, math.ceil(cpu)),
                int(limits.file_size_bytes),
                int(limits.open_files),
                int(limits.max_processes),
                stack,
                (mem << 20) if (mem is not None and not has_memcg) else 0,
                len(prep),
                len(test_payload),
            )
            self.cgroup.set_memory_limit(None if mem is None else self.baseline_bytes + (mem << 20))
            self.cgroup.set_pids_max(pids_max)
            self._cgroup_key = (mem, pids_max)
            stdin_fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
            pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]  # stdout, stderr, result
            try:  # 1 MiB stdout pipe: big outputs stream in 16x fewer wake-ups
                fcntl.fcntl(pipes[0][1], F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
            try:
                view = memoryview(stdin)
                while view:
                    view = view[os.write(stdin_fd, view) :]
                os.lseek(stdin_fd, 0, os.SEEK_SET)
                body = header + prep + test_payload
                socket.send_fds(self.sock, [len(body).to_bytes(4, "big") + body], [stdin_fd] + [w for _, w in pipes])
            except OSError as exc:
                for r, w in pipes:
                    os.close(r)
                    os.close(w)
                os.close(stdin_fd)
                self.restart()
                return RawRun(error=f"cannot hand the test to judge worker {self.index}: {exc}")
            except BaseException:
                self._programs.clear()  # the supervisor may hold a half-sent program: start over
                raise
            ticket = self._next_ticket
            self._next_ticket += 1
            incarnation = self._incarnation
            self._in_flight += 1
        os.close(stdin_fd)
        for _, w in pipes:
            os.close(w)
        read_fds = [r for r, _ in pipes]
        with self._cond:
            while self._turn != ticket:
                self._cond.wait()
        try:
            if incarnation != self._incarnation:
                for fd in read_fds:
                    os.close(fd)
                return RawRun(error=f"judge worker {self.index} was restarted while this test waited in it")
            raw, clean = self._collect(read_fds, limits, test_id)
            if raw.error or not clean:
                if not clean:
                    log.warning("judge worker %d: processes survived the kill sweep; restarting it", self.index)
                with self._cond:
                    if incarnation == self._incarnation:
                        self.restart()
                return raw
            # OOM kills only happen to failing tests: skip the cgroup read on the happy path. Any
            # failure compares against the count seen after the previous failure (kills in between
            # can only come from that test's own processes: a queued test starts after this one
            # is reported, a fraction of a millisecond before this read).
            if has_memcg and (raw.exit_code != 0 or raw.signal is not None):
                kills = self.cgroup.oom_kills()
                raw.memory_exceeded = kills > self._oom_seen
                self._oom_seen = kills
            self.tests_run += 1
            return raw
        finally:
            with self._cond:
                self._turn += 1
                self._in_flight -= 1
                self._cond.notify_all()

    def _collect(self, read_fds: list[int], limits: Limits, test_id: int) -> tuple[RawRun, bool]:
        """Stream the test's output until its report; (result, whether the sweep left the
        sandbox clean)."""
        assert self.sock is not None
        raw = RawRun()
        out_fd, err_fd, res_fd = read_fds
        buffers: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray(), res_fd: bytearray()}
        poller = select.poll()
        for fd in read_fds:
            poller.register(fd, select.POLLIN)
        sock_fd = self.sock.fileno()
        poller.register(sock_fd, select.POLLIN)
        report: dict | None = None
        kill_sent = False
        hard_deadline = time.monotonic() + limits.time_s + HOST_GRACE_S
        drain_deadline = 0.0
        open_fds = set(read_fds)
        read = os.read
        try:
            while open_fds or report is None:
                now = time.monotonic()
                deadline = drain_deadline if report is not None else hard_deadline
                if now >= deadline:
                    if report is None:
                        raw.error = f"judge worker {self.index} gave no result within the wall limit + {HOST_GRACE_S:g} s"
                    break  # report in hand; a stuck writer must not hold us (cannot happen after kill -1)
                for fd, _event in poller.poll((deadline - now) * 1000):
                    if fd == sock_fd:
                        try:
                            report = self._recv_report()
                        except (EOFError, OSError, ValueError) as exc:
                            raw.error = f"judge worker {self.index} died: {exc}; log: {self.log_tail()}"
                            return raw, True
                        poller.unregister(sock_fd)
                        drain_deadline = time.monotonic() + 2.0
                        continue
                    data = read(fd, 1 << 20)
                    if not data:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                        continue
                    buf = buffers[fd]
                    if fd == res_fd:
                        if len(buf) <= limits.output_bytes:
                            buf += data
                        continue
                    raw.output_bytes += len(data)
                    if len(buf) <= limits.output_bytes:  # whole output kept for comparison
                        buf += data
                    if raw.output_bytes > limits.output_bytes and not kill_sent and report is None:
                        raw.output_exceeded = True
                        kill_sent = True
                        with self._cond:  # the socket is shared with the thread handing over the next test
                            self._send_kill(test_id)
        finally:
            for fd in read_fds:
                os.close(fd)
        if report is None:
            return raw, True
        if report["id"] != test_id:
            raw.error = f"judge worker {self.index} reported test {report['id']} for test {test_id}"
            return raw, True
        if report["flags"] & REPORT_ERROR:
            raw.error = f"judge worker {self.index} refused the test (supervisor code {report['status']})"
            return raw, True
        status = report["status"]
        raw.wall_s = report["wall_s"]
        raw.cpu_s = report["cpu_s"]
        raw.memory_mb = report["maxrss_kb"] / 1024.0
        raw.timed_out = report["timed_out"]
        if os.WIFSIGNALED(status):
            raw.signal = os.WTERMSIG(status)
        else:
            raw.exit_code = os.WEXITSTATUS(status)
        raw.stdout = bytes(buffers[out_fd])
        raw.stderr = bytes(buffers[err_fd])
        result_bytes = bytes(buffers[res_fd])
        if result_bytes.startswith(SETUP_ERROR_PREFIX):
            detail = result_bytes[len(SETUP_ERROR_PREFIX) :].decode("utf-8", "replace")
            raw.error = f"test set-up failed in the sandbox: {detail}"
        elif result_bytes:
            try:
                record = json.loads(result_bytes)
            except ValueError:
                record = {"ok": False, "error": "call harness result is not JSON (the program wrote to fd 3?)"}
            raw.result_record = record if isinstance(record, dict) else {"ok": False, "error": "bad result"}
        raw.timings = {k: report[k] for k in ("fork_s", "total_s", "sweep_s", "minflt") if k in report}
        return raw, bool(report.get("clean", True))


class WarmPool:
    """`workers` slots (one per core), each a lean sandbox (stdio Python, C++) and, started on
    first use, a full one (call/assert: LCB's import prelude pre-imported). `execute` runs one
    test on a slot (thread-safe). Two callers may share a slot: the second test is queued in the
    same sandbox behind the first (`WarmWorker.run`), never run beside it, so one program per core
    runs at a time and wall-time limits keep their meaning."""

    TESTS_PER_SLOT = 2  # one running + one queued

    def __init__(self, workers: int, isolation_mode: str, cpp_dir: Path) -> None:
        from xcoder.judge import native

        self.isolation_mode = isolation_mode
        self.cpp_dir = cpp_dir
        self.native_so = native.shared_object(cpp_dir)
        self._idle: queue.Queue[int] = queue.Queue()
        self._slots: list[dict[str, WarmWorker]] = []
        self._slot_cond = threading.Condition()
        self._holders = [0] * workers  # callers using each slot
        self._active = [""] * workers  # the profile they use (both use the same sandbox)
        _live_pools.add(self)
        try:
            for index in range(workers):
                self._slots.append({"lean": WarmWorker(index, isolation_mode, cpp_dir, "lean", self.native_so)})
            for _ in range(self.TESTS_PER_SLOT):
                for index in range(workers):
                    self._idle.put(index)
        except Exception:
            self.close()
            raise

    @property
    def workers(self) -> int:
        return len(self._slots)

    def _acquire(self, index: int, profile: str) -> WarmWorker:
        """The slot's sandbox for `profile`, once no caller uses the slot's other sandbox."""
        with self._slot_cond:
            while self._holders[index] and self._active[index] != profile:
                self._slot_cond.wait()
            slot = self._slots[index]
            if profile not in slot:
                slot[profile] = WarmWorker(index, self.isolation_mode, self.cpp_dir, profile, self.native_so)
            self._active[index] = profile
            self._holders[index] += 1
            return slot[profile]

    def _release(self, index: int) -> None:
        with self._slot_cond:
            self._holders[index] -= 1
            self._slot_cond.notify_all()

    def execute(
        self,
        *,
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
        index = self._idle.get()
        try:
            if language == "cpp":
                assert binary is not None
                profile = "lean"
                path = f"/cpp/{binary.name}" if self.isolation_mode == "bwrap" else str(binary)
                program = {"language": "cpp", "binary": path, "kind": "stdio"}
            else:
                profile = "lean" if (kind == "stdio" and not prelude) else "full"
                program = {"language": "python", "kind": kind, "prelude": prelude, "code": code, "fn_name": fn_name}
                if kind == "assert":
                    program["test_code"] = test_code
            worker = self._acquire(index, profile)
            try:
                if kind == "call":  # the arguments travel as the test payload, stdin stays empty
                    return worker.run(program, stdin.encode(), b"", limits)
                return worker.run(program, b"", stdin.encode(), limits)
            finally:
                self._release(index)
        finally:
            self._idle.put(index)

    def _workers(self) -> list[WarmWorker]:
        return [w for slot in self._slots for w in slot.values()]

    def cpu_seconds(self) -> float:
        """CPU used so far by the sandboxes (supervisors + every test process they reaped):
        lets benchmarks report CPU per test, which machine load distorts less than wall time."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for worker in self._workers():
            if worker.proc is None:
                continue
            stack = [worker.proc.pid]
            while stack:
                pid = stack.pop()
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        stack += [int(c) for c in (task / "children").read_text().split()]
                except (OSError, ValueError):
                    continue
        return total / tick

    def program_uids(self) -> set[int]:
        return {w.uid for w in self._workers() if w.uid is not None}

    def close(self) -> None:
        for worker in self._workers():
            worker.stop()
        self._slots.clear()
