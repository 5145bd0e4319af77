"""Host side of one warm worker: a sandboxed supervisor (`zygote.py`) and the bytes it speaks.

Each worker is a bubblewrap sandbox (no network, own pid namespace, read-only system) holding a
warm Python interpreter whose C loop forks a fresh child per test, in its own cgroup v1 memory +
pids group when the host allows (real MLE verdicts, fork bombs capped). The host sends programs
and batches of tests over a unix socket; the supervisor runs them one at a time, streams their
output back and reports each (frame layouts: `protocol.py`). `WarmWorker` owns the process and
the bytes; scheduling tests over many workers is `pool.WarmPool`'s job.
"""

from __future__ import annotations

import atexit
import collections
import functools
import itertools
import logging
import marshal
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from xcoder.judge import isolation, native
from xcoder.judge.cgroups import WorkerCgroup
from xcoder.judge.limits import cgroup_limits, rlimits_for
from xcoder.judge.protocol import (
    CHUNK_HEADER,
    CHUNK_MAGIC,
    INLINE_MAX,
    PROGRAM_HEADER,
    PROGRAM_HEADER_SIZE,
    PROGRAM_MAGIC,
    PROGRAM_SLOTS,
    QUEUE_MAX,
    REPORT_CLEAN,
    REPORT_ERROR,
    REPORT_HEADER,
    REPORT_MAGIC,
    REPORT_OOM,
    REPORT_OUTPUT_EXCEEDED,
    REPORT_RETRACTED,
    REPORT_TIMED_OUT,
    RETRACT_MAGIC,
    SETUP_ERROR_PREFIX,
    TEST_HEADER,
    TEST_HEADER_SIZE,
    TEST_MAGIC,
    TEST_PAYLOAD_FD,
    TEST_STDIN_FD,
)
from xcoder.judge.types import Limits
from xcoder.judge.verdicts import RawRun, parse_call_result

log = logging.getLogger(__name__)

# The modules the sandboxed supervisor runs, in load order: stdlib-only, installed there under
# their real names (the sandbox cannot import the package). Packages get an empty module.
SUPERVISOR_MODULES = ("xcoder", "xcoder.judge", "xcoder.judge.child", "xcoder.judge.zygote")
_SRC_DIR = Path(__file__).parent
# The supervisor is started from *marshalled* code objects (read from an inherited memfd whose
# number is argv[1]) rather than from source: compiling ~25 KB of source inside the sandbox left
# ~1.5 MB of freed parser memory in the supervisor's heap, and every fork copies (and every exit
# tears down) the page-table entries of all touched pages. Same interpreter on both sides. The
# modules' filename is "<string>", as for `-c`: `child._program_traceback` trims those frames.
SUPERVISOR_BOOT = (
    "import marshal, os, sys\n"
    "_fd = int(sys.argv.pop(1))\n"
    "for _name, _code in marshal.loads(os.pread(_fd, os.fstat(_fd).st_size, 0)):\n"
    "    _module = sys.modules[_name] = type(sys)(_name)\n"
    "    _parent, _, _leaf = _name.rpartition('.')\n"
    "    if _parent:\n"
    "        setattr(sys.modules[_parent], _leaf, _module)\n"
    "    if _code is None:\n"
    "        _module.__path__ = []\n"
    "    else:\n"
    "        exec(_code, _module.__dict__)\n"
    "os.close(_fd)\n"
    "del _fd, _name, _code, _module, _parent, _leaf\n"
    "sys.modules['xcoder.judge.zygote'].main()\n"
)
_supervisor_code: bytes | None = None


def supervisor_units() -> list[tuple[str, object]]:
    """(module name, code object or None for a package) for each of SUPERVISOR_MODULES."""
    units: list[tuple[str, object]] = []
    for name in SUPERVISOR_MODULES:
        leaf = name.rpartition(".")[2]
        path = _SRC_DIR / f"{leaf}.py"
        units.append((name, compile(path.read_text(), "<string>", "exec") if name.count(".") == 2 else None))
    return units


def _supervisor_code_fd() -> int:
    """A memfd holding the marshalled supervisor modules (compiled once per host process)."""
    global _supervisor_code
    if _supervisor_code is None:
        _supervisor_code = marshal.dumps(supervisor_units())
    fd = os.memfd_create("xcoder-judge-supervisor")  # inheritable only through pass_fds
    _write_all(fd, _supervisor_code)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -S: no `site` at start-up (its .pth hooks import ~40 modules into the template every test is
# forked from); zygote.install_site gives programs what `site` would (site-packages, exit/quit).
PYTHON_FLAGS = ("-S", "-s")


@functools.lru_cache(maxsize=1)
def _site_dirs() -> tuple[str, ...]:
    """The site-packages dirs `site` gives this interpreter (the sandbox runs the same one)."""
    import site

    return tuple(d for d in site.getsitepackages() if os.path.isdir(d))


START_TIMEOUT_S = 60.0
RECV_BYTES = 256 * 1024

_uid_counter = itertools.count()
_live_workers: weakref.WeakSet[WarmWorker] = weakref.WeakSet()


@atexit.register
def _stop_live_workers() -> None:
    """Workers never stopped by their owner still must not leave sandboxes or cgroups behind."""
    for worker in list(_live_workers):
        worker.stop()


def _program_uid() -> int:
    """A distinct unprivileged uid per worker (RLIMIT_NPROC is counted per uid)."""
    return 200_000 + (os.getpid() % 50_000) * 64 + (next(_uid_counter) % 64)


class WorkerDied(RuntimeError):
    pass


class ProtocolError(RuntimeError):
    done: list = []  # tests completed before the garbage (set by WarmWorker._parse)


class Sent:
    """A test handed to a worker and not yet reported."""

    __slots__ = ("test_id", "job", "index", "slot", "wall_s", "chunks")

    def __init__(self, test_id: int, job, index: int, slot: int, wall_s: float) -> None:
        self.test_id, self.job, self.index, self.slot, self.wall_s = test_id, job, index, slot, wall_s
        self.chunks: list[bytearray] | None = None  # stdout, stderr, result streamed so far


class WarmWorker:
    """One sandboxed supervisor. Not thread-safe: the pool's dispatcher thread owns it (start-up
    and `stop` may run elsewhere while the dispatcher is not using it)."""

    def __init__(self, index: int, isolation_mode: str, cpp_dir: Path, profile: str = "lean",
                 native_so: Path | None = None) -> None:
        self.index = index
        self.profile = profile
        self.isolation_mode = isolation_mode
        self.cpp_dir = cpp_dir
        # the supervisor's C loop, in cpp_dir (bound into the sandbox); built now if not given
        self.native_so = native_so if native_so is not None else native.shared_object(cpp_dir)
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.cgroup: WorkerCgroup | None = None
        self.baseline_bytes = 0
        self.cgroup_key: tuple | None = None
        self.tests_run = 0
        self.programs_loaded = 0  # by this supervisor: it is replaced after RECYCLE_AFTER_PROGRAMS
        self.outstanding: collections.deque[Sent] = collections.deque()
        self.programs: collections.OrderedDict[object, int] = collections.OrderedDict()  # key -> slot (LRU)
        self.slot_refs: dict[int, int] = {}  # slot -> outstanding tests that name it
        self.outbox: collections.deque[tuple[memoryview, list[int]]] = collections.deque()
        self.inbuf = bytearray()
        # recv target, reused: `recv(n)` allocates n bytes per call (an mmap/munmap for 1 MiB)
        self._landing = memoryview(bytearray(RECV_BYTES))
        self.head_since = 0.0  # when the head of `outstanding` started (about)
        self.avg_test_s = 0.001  # moving average of a test's supervisor time (sizes the queue)
        self.retiring = False  # the supervisor reported an unclean sweep and exits: nothing it holds ran
        self.retracting = False  # a RETRACT is on its way: the queue behind the head comes back
        self.watch_mask = 0  # poll events the dispatcher waits for on this socket
        self.defer_until = 0.0  # read the socket at this time even without an event (0: not deferred)
        self.recent_timings: collections.deque[dict] = collections.deque(maxlen=4096)  # diagnostics (faults.py)
        self._ids = itertools.count(1)
        self._scratch_base: tempfile.TemporaryDirectory | None = None
        self._log: collections.deque[bytes] = collections.deque(maxlen=64)
        self._log_thread: threading.Thread | None = None
        _live_workers.add(self)
        self.start()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        support = isolation.detect_host()
        is_root = os.geteuid() == 0
        # isolation=none runs on the host's filesystem, where a foreign uid may not even read the
        # interpreter (e.g. under /root): only the sandbox drops to a dedicated uid
        self.uid = _program_uid() if (is_root and self.isolation_mode == "bwrap") else None
        name = f"xcoder-judge-{os.getpid()}-{self.index}-{time.monotonic_ns() % 10**9}"
        self.cgroup = WorkerCgroup(
            name, use_memory=support.cgroup_memory is not None, use_pids=support.cgroup_pids is not None
        )
        try:
            parent_sock = self._spawn(support)
        except BaseException:
            self.cgroup.destroy()
            self.cgroup = None
            if self._scratch_base is not None:
                self._scratch_base.cleanup()
                self._scratch_base = None
            raise
        self._log.clear()
        self._log_thread = threading.Thread(
            target=self._drain_log, args=(self.proc.stdout,), name=f"judge-log-{self.index}", daemon=True
        )
        self._log_thread.start()
        self.sock = parent_sock
        self.sock.settimeout(START_TIMEOUT_S)
        try:
            hello = self._recv_hello()
        except (TimeoutError, OSError, EOFError, ValueError) as exc:
            tail_log = self.log_tail()
            self.stop()
            raise WorkerDied(f"judge worker {self.index} did not start: {exc}; log: {tail_log}") from exc
        self.sock.setblocking(False)
        if not hello.get("ready"):
            self.stop()
            raise WorkerDied(f"judge worker {self.index} sent {hello!r} instead of ready")
        self.programs.clear()  # a new supervisor holds no program
        self.slot_refs.clear()
        self.outbox.clear()
        self.inbuf = bytearray()
        self.retiring = False
        self.retracting = False
        self.cgroup_key = None
        self.baseline_bytes = self.cgroup.usage_bytes()
        self.tests_run = 0
        self.programs_loaded = 0

    def _spawn(self, support: isolation.HostSupport) -> socket.socket:
        """Start the sandboxed supervisor (self.proc); the host's end of its control socket."""
        assert self.cgroup is not None
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._popen(support, parent_sock, child_sock)
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        return parent_sock

    def _popen(self, support: isolation.HostSupport, parent_sock: socket.socket, child_sock: socket.socket) -> None:
        assert self.cgroup is not None
        _grow_send_buffer(child_sock)  # streamed output then rarely waits for the host to read
        _grow_send_buffer(parent_sock)
        ctl = child_sock.fileno()  # inherited under the same number (pass_fds)
        owned: list[int] = []  # fds only the child needs: closed here whatever happens
        try:
            code_fd = _supervisor_code_fd()
            owned.append(code_fd)
            pass_fds = [ctl, code_fd]
            oom_fd = self.cgroup.open_oom_control()  # the supervisor attributes OOM kills itself
            if oom_fd is not None:
                owned.append(oom_fd)
                pass_fds.append(oom_fd)
            native_arg = f"/cpp/{self.native_so.name}" if self.isolation_mode == "bwrap" else str(self.native_so)
            tail = [self.profile, native_arg, str(-1 if oom_fd is None else oom_fd), os.pathsep.join(_site_dirs()),
                    sys.prefix, sys.exec_prefix]
            if self.isolation_mode == "bwrap":
                seccomp_fd = None
                if support.seccomp:
                    seccomp_fd = isolation.open_seccomp_fd()
                    owned.append(seccomp_fd)
                    pass_fds.append(seccomp_fd)
                inner = [sys.executable, *PYTHON_FLAGS, "-c", SUPERVISOR_BOOT, str(code_fd), str(ctl), "ns", "/tmp",
                         *tail]
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
                inner = [sys.executable, *PYTHON_FLAGS, "-c", SUPERVISOR_BOOT, str(code_fd), str(ctl), "none",
                         self._scratch_base.name, *tail]
                cmd, env = inner, isolation.supervisor_env()
            procs_files = self.cgroup.procs_files()

            def preexec() -> None:
                for path in procs_files:
                    with open(path, "w") as fh:
                        fh.write(str(os.getpid()))

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
            for fd in owned:
                os.close(fd)

    def _recv_hello(self) -> dict:
        assert self.sock is not None
        head = self._recv_exact(4)
        return marshal.loads(self._recv_exact(int.from_bytes(head, "little")))

    def _recv_exact(self, count: int) -> bytes:
        assert self.sock is not None
        data = bytearray()
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise EOFError("judge worker closed its control socket")
            data += chunk
        return bytes(data)

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
        for _, fds in self.outbox:
            for fd in fds:
                os.close(fd)
        self.outbox.clear()
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

    def fileno(self) -> int:
        assert self.sock is not None
        return self.sock.fileno()

    # -- sending -------------------------------------------------------------------------------
    def capacity(self) -> int:
        """Tests this worker should accept now: enough queued for ~10 ms of work (so the core never
        waits for the host), few when tests are long (so another worker can take the rest), none
        while its running test has run much longer than usual (see `head_is_slow`)."""
        if self.outstanding and self.head_is_slow(time.monotonic()):
            return 0
        want = max(2, min(QUEUE_MAX, math.ceil(0.010 / max(self.avg_test_s, 1e-5))))
        return max(0, want - len(self.outstanding))

    def slow_after_s(self) -> float:
        """How long a test may run before the tests queued behind it are better run elsewhere."""
        return max(0.05, 20 * self.avg_test_s)

    def head_is_slow(self, now: float) -> bool:
        return now - self.head_since > self.slow_after_s()

    def retract(self) -> None:
        """Ask for every queued test that has not started back (a RETRACTED report each)."""
        self.outbox.append((memoryview((8).to_bytes(4, "little") + RETRACT_MAGIC.to_bytes(4, "little") + bytes(4)), []))
        self.retracting = True

    def slot_for(self, key: object, program: bytes) -> int | None:
        """The supervisor slot holding `key`'s program (queued to be sent if new), or None when
        every slot is held by outstanding tests. A slot a queued test names is never replaced."""
        slot = self.programs.get(key)
        if slot is not None:
            self.programs.move_to_end(key)
            return slot
        if len(self.programs) < PROGRAM_SLOTS:
            used = set(self.programs.values())
            slot = next(i for i in range(PROGRAM_SLOTS) if i not in used)
        else:
            victim = next((k for k, s in self.programs.items() if not self.slot_refs.get(s)), None)
            if victim is None:
                return None
            slot = self.programs.pop(victim)
        self.programs[key] = slot
        self.programs_loaded += 1
        self.outbox.append((memoryview(PROGRAM_HEADER.pack(PROGRAM_HEADER_SIZE + len(program), PROGRAM_MAGIC, slot,
                                                           len(program), 0)
                                       + program), []))
        return slot

    def send_test(self, job, index: int, slot: int, payload: bytes, stdin: bytes, limits: Limits) -> None:
        """Queue test `index` of `job` (its program already in `slot`)."""
        test_id = next(self._ids)
        rl = rlimits_for(limits, memory_cgroup=self.cgroup is not None and self.cgroup.memory is not None)
        flags, fds, inline = 0, [], [payload, stdin]
        if len(payload) + len(stdin) > INLINE_MAX:  # big inputs travel as memfds (charged to the host)
            if stdin:
                flags |= TEST_STDIN_FD
                fds.append(_memfd("stdin", stdin))
                inline[1] = b""
            if len(payload) > INLINE_MAX // 2:
                flags |= TEST_PAYLOAD_FD
                fds.append(_memfd("payload", payload))
                inline[0] = b""
        body_len = len(inline[0]) + len(inline[1])
        header = TEST_HEADER.pack(
            TEST_HEADER_SIZE + body_len, TEST_MAGIC, flags, test_id, slot, -1 if self.uid is None else self.uid,
            rl.wall_ns, rl.cpu_s, rl.file_size, rl.open_files, rl.processes, rl.stack, rl.address_space,
            rl.output_bytes, len(payload), len(stdin), len(fds), 0,
        )
        # a frame with fds goes alone (`flush` never merges it): its fds arrive with its first byte
        self.outbox.append((memoryview(header + inline[0] + inline[1]), fds))
        if not self.outstanding:
            self.head_since = time.monotonic()
        self.outstanding.append(Sent(test_id, job, index, slot, float(limits.time_s)))
        self.slot_refs[slot] = self.slot_refs.get(slot, 0) + 1

    def flush(self) -> bool:
        """Send what the socket takes without blocking; True when the outbox is empty."""
        assert self.sock is not None
        while self.outbox:
            data, fds = self.outbox[0]
            if not fds and len(self.outbox) > 1 and not self.outbox[1][1]:  # coalesce plain frames
                parts = []
                while self.outbox and not self.outbox[0][1] and sum(map(len, parts)) < (1 << 20):
                    parts.append(self.outbox.popleft()[0])
                data = memoryview(b"".join(parts))
                self.outbox.appendleft((data, []))
            try:
                sent = socket.send_fds(self.sock, [data], fds) if fds else self.sock.send(data)
            except BlockingIOError:
                return False
            for fd in fds:
                os.close(fd)
            if sent < len(data):
                self.outbox[0] = (data[sent:], [])
                return False
            self.outbox.popleft()
        return True

    # -- receiving -----------------------------------------------------------------------------
    def receive(self) -> tuple[list[tuple[Sent, RawRun | None, bool]], bool]:
        """Read what has arrived: the tests it completes as (sent, raw, sweep was clean), in
        order (raw None: handed back unstarted, after a `retract`), and whether the supervisor has
        closed the socket (what it sent before that is still delivered). ProtocolError on garbage."""
        assert self.sock is not None
        closed = False
        landing = self._landing
        while True:
            try:
                got = self.sock.recv_into(landing)
            except BlockingIOError:
                break
            except ConnectionResetError:
                got = 0
            if not got:
                closed = True
                break
            self.inbuf += landing[:got]
            if got < len(landing):
                break
        return self._parse(), closed

    def _parse(self) -> list[tuple[Sent, RawRun | None, bool]]:
        """The complete frames in `inbuf`. On garbage, ProtocolError carries the tests completed
        before it (`.done`): they are delivered, not lost."""
        done: list[tuple[Sent, RawRun | None, bool]] = []
        try:
            self._parse_into(done)
        except ProtocolError as exc:
            exc.done = done
            raise
        return done

    def _parse_into(self, done: list) -> None:
        buf = self.inbuf
        pos = 0
        with memoryview(buf) as view:  # handlers copy what they keep: no view outlives this block
            while len(buf) - pos >= 4:
                length = int.from_bytes(view[pos : pos + 4], "little")
                if len(buf) - pos - 4 < length:
                    break
                start = pos + 4
                pos = start + length
                magic = int.from_bytes(view[start : start + 4], "little")
                if magic == CHUNK_MAGIC:
                    self._on_chunk(view, start, length)
                elif magic == REPORT_MAGIC:
                    done.append(self._on_report(view, start, length))
                else:
                    raise ProtocolError(f"judge worker {self.index} sent a frame with magic {magic:#x}")
        del buf[:pos]

    def _on_chunk(self, view: memoryview, start: int, length: int) -> None:
        _magic, stream, test_id, size, _pad = CHUNK_HEADER.unpack_from(view, start)
        if (not self.outstanding or self.outstanding[0].test_id != test_id or not 1 <= stream <= 3
                or CHUNK_HEADER.size + size != length):
            raise ProtocolError(f"judge worker {self.index} streamed output of test {test_id} out of turn")
        head = self.outstanding[0]
        if head.chunks is None:
            head.chunks = [bytearray(), bytearray(), bytearray()]
        at = start + CHUNK_HEADER.size
        head.chunks[stream - 1] += view[at : at + size]

    def _release_slot(self, slot: int) -> None:
        refs = self.slot_refs.get(slot, 1) - 1
        if refs:
            self.slot_refs[slot] = refs
        else:
            self.slot_refs.pop(slot, None)

    def _on_retracted(self, test_id: int) -> tuple[Sent, None, bool]:
        for position, sent in enumerate(self.outstanding):
            if sent.test_id == test_id:
                del self.outstanding[position]
                self._release_slot(sent.slot)
                return sent, None, True
        raise ProtocolError(f"judge worker {self.index} handed back test {test_id}, which it does not hold")

    def _on_report(self, view: memoryview, start: int, length: int) -> tuple[Sent, RawRun | None, bool]:
        """A finished test's (sent, raw, clean); raw is None for a test handed back unstarted."""
        (_magic, flags, test_id, status, code, wall, cpu, maxrss, minflt, fork, total, sweep, output_total,
         out_len, err_len, res_len, _pad) = REPORT_HEADER.unpack_from(view, start)
        if REPORT_HEADER.size + out_len + err_len + res_len != length:
            raise ProtocolError(f"judge worker {self.index} sent a report of {length} bytes for "
                                f"{out_len}+{err_len}+{res_len}")
        if flags & REPORT_RETRACTED:
            return self._on_retracted(test_id)
        if not self.outstanding or self.outstanding[0].test_id != test_id:
            expected = self.outstanding[0].test_id if self.outstanding else None
            raise ProtocolError(f"judge worker {self.index} reported test {test_id}, expected {expected}")
        sent = self.outstanding.popleft()
        self.head_since = time.monotonic()
        self.retracting = False
        self._release_slot(sent.slot)
        at = start + REPORT_HEADER.size
        tails = []
        for size in (out_len, err_len, res_len):
            tails.append(bytes(view[at : at + size]))
            at += size
        if sent.chunks is not None:
            stdout, stderr, result = (bytes(c + t) for c, t in zip(sent.chunks, tails))
        else:
            stdout, stderr, result = tails
        raw = RawRun()
        clean = bool(flags & REPORT_CLEAN)
        if not clean:
            self.retiring = True
        if flags & REPORT_ERROR:
            raw.error = f"judge worker {self.index} refused the test (supervisor code {code})"
            return sent, raw, clean
        self.tests_run += 1
        self.avg_test_s += 0.1 * (total / 1e9 - self.avg_test_s)
        raw.wall_s = wall / 1e9
        raw.cpu_s = cpu / 1e9
        raw.memory_mb = maxrss / 1024.0
        raw.timed_out = bool(flags & REPORT_TIMED_OUT)
        raw.output_exceeded = bool(flags & REPORT_OUTPUT_EXCEEDED)
        raw.memory_exceeded = bool(flags & REPORT_OOM)
        raw.output_bytes = output_total
        if os.WIFSIGNALED(status):
            raw.signal = os.WTERMSIG(status)
        else:
            raw.exit_code = os.WEXITSTATUS(status)
        raw.stdout, raw.stderr = stdout, stderr
        if result.startswith(SETUP_ERROR_PREFIX):
            detail = result[len(SETUP_ERROR_PREFIX) :].decode("utf-8", "replace")
            raw.error = f"test set-up failed in the sandbox: {detail}"
        elif result:
            raw.result_record = parse_call_result(result)
        raw.timings = {"fork_s": fork / 1e9, "total_s": total / 1e9, "sweep_s": sweep / 1e9, "minflt": minflt}
        self.recent_timings.append(raw.timings)
        return sent, raw, clean

    # -- cgroup limits -------------------------------------------------------------------------
    def apply_limits(self, limits: Limits) -> None:
        """Set the worker's cgroup limits for `limits` (only while nothing is outstanding)."""
        key = cgroup_limits(limits)
        if key == self.cgroup_key:
            return
        assert not self.outstanding and self.cgroup is not None
        mem, pids_max = key
        self.cgroup.set_memory_limit(None if mem is None else self.baseline_bytes + (mem << 20))
        self.cgroup.set_pids_max(pids_max)
        self.cgroup_key = key


SOCKET_BUFFER_BYTES = 4 << 20
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)


def _grow_send_buffer(sock: socket.socket) -> None:
    """A unix stream socket holds at most its sender's send buffer in flight (net.core.wmem_max,
    ~200 KB by default, unless we may force more: root)."""
    for option in (SO_SNDBUFFORCE, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
            return
        except OSError:
            continue


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
