"""The warm supervisor that runs INSIDE the sandbox: forks one fresh child per test.

Stdlib only; the host sends `child.py` + this file as marshalled code. Protocol over the
inherited unix socket (fd given in argv), every frame a 4-byte big-endian length + body:
- job (host -> here): a fixed little-endian header (JOB_HEADER_SIZE bytes: magic, flags, test id,
  program slot, uid, limits, payload lengths), then an optional *prepare* payload (marshalled
  program description: language, kind, code, fn_name, test code, binary; compiled here and kept
  in `PROGRAMS[slot]`, so a program's code crosses the socket once per worker, not per test),
  then a per-test payload (a call-kind test's input). Four fds ride with it: stdin, stdout,
  stderr, result. A job that arrives while a test runs is the next test, queued by the host: kept
  (one at most) and forked as soon as the running one is reported. A header with FLAG_KILL and the
  running test's id (output limit hit) kills it early; one naming an ended test is ignored.
- report (here -> host): a fixed REPORT_SIZE-byte record (status, rusage, flags, timings).
We fork; the child drops to the job's unprivileged uid, applies rlimits, wires the fds to 0/1/2
and *returns to the top level* where the program runs like `python3 prog.py` (or execs the
compiled binary). The supervisor enforces the wall limit with a pidfd, kills every leftover
process in the sandbox's pid namespace after each test (background processes cannot outlive
their run), wipes the scratch dir and /tmp, and reports. The per-test loop runs in C
(`_zygote.c`) when the host could build it, else in Python below: same protocol, same rules.
"""

import marshal
import os
import resource
import select
import signal
import socket
import stat as stat_mod
import sys
import time

# Fork cost grows with the number of memory mappings, and every extension module (.so) adds
# ~5: the supervisor itself imports only socket/select/resource (no json, struct, shutil, ctypes);
# frames are marshal (same interpreter on both sides) behind a 4-byte big-endian length.
SETUP_ERROR_PREFIX = b"\0xcoder-setup-error:"
SCRATCH = "/tmp/run"  # per-test scratch dir; set from argv (sandbox: its private tmpfs)
PROGRAM_FILE = "/tmp/run/prog.py"  # SCRATCH/PROGRAM_PATH, the compiled program's filename
IN_NAMESPACE = True  # False in isolation=none: no pid namespace, so never kill(-1)
TMP_KEEP = frozenset()  # what the sandbox's /tmp holds before any test (bwrap's mount points + scratch)
# Pre-imported so forked children find them warm. "lean" (stdio, C++): what competitive programs
# import, cheap in mappings; "full" (call/assert): LiveCodeBench's whole wildcard-import prelude.
# Not `threading`: its at-fork hook runs Python code in every child.
WARM_MODULES = {
    "lean": "collections heapq bisect itertools functools math re string operator copy io typing".split(),
    "full": (
        "collections heapq bisect itertools functools math re string operator copy io typing json "
        "datetime decimal fractions random statistics array"
    ).split(),
}


# wire format: keep in sync with _zygote.c and warm.py (JOB_HEADER / REPORT structs)
JOB_MAGIC = 0x314A4358  # b"XCJ1" little-endian
REPORT_MAGIC = 0x31524358  # b"XCR1"
JOB_HEADER_SIZE = 88  # <IIQiiQQQQQQQII: magic flags id slot uid wall_ns cpu_s fsize nofile nproc stack as prep test
REPORT_SIZE = 80  # <IIQiiQQQQQQQ: magic flags id status pad wall_ns cpu_ns maxrss_kb minflt fork_ns total_ns sweep_ns
FLAG_PREPARE = 1
FLAG_KILL = 2
REPORT_TIMED_OUT, REPORT_KILLED_BY_HOST, REPORT_CLEAN, REPORT_ERROR = 1, 2, 4, 8
PROGRAMS = {}  # slot -> prepared program (the host decides which slot holds what)
MAIN_TEMPLATES = {}  # "plain" / "prelude" -> the children's `__main__` (built once by `serve`)
QUEUED = []  # (body, fds) of the job the host queued behind the running test (at most one)
KEEP_ALIVE = []  # objects `serve` must not free when a child returns from it (see there)


def _recv_exact(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def recv_frame(sock):
    """Exactly one frame and the fds that came with it; (None, []) when the host closed the
    socket. The length is read with recvmsg so the next frame's fds stay queued for it."""
    head, fds = b"", []
    while len(head) < 4:
        data, ancillary, _flags, _addr = sock.recvmsg(4 - len(head), socket.CMSG_SPACE(8 * 4))
        for level, kind, blob in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += [int.from_bytes(blob[i : i + 4], sys.byteorder, signed=True) for i in range(0, len(blob) - 3, 4)]
        if not data:
            for fd in fds:
                os.close(fd)
            return None, []
        head += data
    return _recv_exact(sock, int.from_bytes(head, "big")), fds


def parse_header(body):
    """The job header as a dict (None if malformed)."""
    if len(body) < JOB_HEADER_SIZE or int.from_bytes(body[0:4], "little") != JOB_MAGIC:
        return None
    fields = {}
    for name, start, size, signed in (("flags", 4, 4, False), ("id", 8, 8, False), ("slot", 16, 4, True),
                                      ("uid", 20, 4, True), ("wall_ns", 24, 8, False), ("cpu_s", 32, 8, False),
                                      ("fsize", 40, 8, False), ("nofile", 48, 8, False), ("nproc", 56, 8, False),
                                      ("stack", 64, 8, False), ("as", 72, 8, False), ("prep_len", 80, 4, False),
                                      ("test_len", 84, 4, False)):
        fields[name] = int.from_bytes(body[start : start + size], "little", signed=signed)
    if JOB_HEADER_SIZE + fields["prep_len"] + fields["test_len"] != len(body):
        return None
    return fields


def send_msg(sock, obj):
    """A marshalled frame (only the start-up hello: reports are fixed records)."""
    body = marshal.dumps(obj)
    sock.sendall(len(body).to_bytes(4, "big") + body)


def send_report(sock, test_id, flags, status, wall_ns=0, cpu_ns=0, maxrss_kb=0, minflt=0, fork_ns=0, total_ns=0,
                sweep_ns=0):
    body = (REPORT_MAGIC.to_bytes(4, "little") + flags.to_bytes(4, "little") + test_id.to_bytes(8, "little")
            + status.to_bytes(4, "little", signed=True) + bytes(4))
    for value in (wall_ns, cpu_ns, maxrss_kb, minflt, fork_ns, total_ns, sweep_ns):
        body += max(0, value).to_bytes(8, "little")
    sock.sendall(REPORT_SIZE.to_bytes(4, "big") + body)


def prepare(slot, payload):
    """Host's program description for `slot`: compiled here, once, inherited by every child."""
    job = marshal.loads(payload)
    if job.get("language") == "python":
        _attach_code_objects(job)
        # what run_job needs, set here once rather than written by every child
        job["_main"] = MAIN_TEMPLATES["prelude" if (job.get("kind") != "stdio" or job.get("prelude")) else "plain"]
        job["_path"], job["_dir"] = PROGRAM_FILE, SCRATCH  # the child's cwd is SCRATCH
    PROGRAMS[slot] = job


def kill_all_others(pid):
    """SIGKILL every process in this pid namespace except ourselves and init (pid 1);
    repeat until none is left (a fork bomb keeps spawning until its members are dead)."""
    if not IN_NAMESPACE:  # UNSAFE mode: only the test's own session can be reached
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        return True
    deadline = time.monotonic() + 3.0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return True
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)


def wipe_tmp():
    """Remove whatever a test left directly in the sandbox's /tmp (programs may use /tmp as on
    any machine, but nothing they write there may reach the next test). The entries present
    before the first test are bwrap's mount points, root-owned: a program cannot change them."""
    for name in os.listdir("/tmp"):
        if name in TMP_KEEP:
            continue
        path = "/tmp/" + name
        try:
            if stat_mod.S_ISDIR(os.lstat(path).st_mode):
                _rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            pass


def wipe_scratch(uid):
    """Leave an empty scratch dir owned by `uid` (kept between tests when the program wrote
    nothing: saves a mkdir/chown/rmdir per test)."""
    try:
        st = os.lstat(SCRATCH)
    except FileNotFoundError:
        st = None
    if st is not None:
        if (
            stat_mod.S_ISDIR(st.st_mode)
            and stat_mod.S_IMODE(st.st_mode) == 0o700
            and (uid is None or st.st_uid == uid)
            and not os.listdir(SCRATCH)
        ):
            return
        if stat_mod.S_ISDIR(st.st_mode):
            _rmtree(SCRATCH)
        else:
            os.unlink(SCRATCH)
        if os.path.lexists(SCRATCH):  # never reuse a dirty dir
            os.rename(SCRATCH, f"{SCRATCH}.dead.{time.monotonic_ns()}")
    os.mkdir(SCRATCH, 0o700)
    if uid is not None:
        os.chown(SCRATCH, uid, uid)


_CODE_CACHE = {}  # (source, filename) -> code object; compiled once here, not in every child
_CODE_CACHE_MAX = 64  # bounded: a bigger supervisor heap makes every fork dearer


def _compiled(source, filename):
    key = (source, filename)
    code = _CODE_CACHE.get(key)
    if code is None:
        if len(_CODE_CACHE) >= _CODE_CACHE_MAX:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[key] = compile(source, filename, "exec")
    return code


_PRELUDE_NAMES = None


def _prelude_names():
    """What executing CALL_PRELUDE binds in a fresh `__main__` (every module it names is
    pre-imported in the "full" profile, so the imports have no side effects): each child then
    gets the same bindings with one dict update instead of ~35 import statements."""
    global _PRELUDE_NAMES
    if _PRELUDE_NAMES is None:
        scope = dict(types.ModuleType("__main__").__dict__, __file__=PROGRAM_FILE, __builtins__=builtins, __cached__=None)
        before = dict(scope)
        exec(_compiled(CALL_PRELUDE, "<prelude>"), scope)
        _PRELUDE_NAMES = {k: v for k, v in scope.items() if k not in before or before[k] is not v}
    return _PRELUDE_NAMES


def _attach_code_objects(job):
    """Compile in the supervisor (cached across tests): compiling in each forked child costs
    ~1 ms of page faults. A source that does not compile here is left for the child to raise."""
    try:
        job["_code_obj"] = _compiled(job["code"], PROGRAM_FILE)  # in the child's cwd
        if job.get("kind") != "stdio" or job.get("prelude"):
            job["_prelude_obj"] = _compiled(CALL_PRELUDE, "<prelude>")
            job["_prelude_names"] = _prelude_names()
        if job.get("kind") == "assert":
            job["_test_obj"] = _compiled(job.get("test_code") or "", "test.py")
    except Exception:  # noqa: BLE001 - the child compiles again and reports it like python3
        pass


def _rmtree(path):
    """shutil.rmtree without importing shutil (it loads zlib/bz2/lzma: more mappings to fork)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def child_setup(h, fds, keep_fd):
    """In the forked child, before any program code: fds, scratch dir, rlimits, uid drop.
    `h` is the parsed job header (limits, uid; uid -1 = do not drop)."""
    stdin_fd, stdout_fd, stderr_fd, result_fd = fds
    os.setsid()
    os.dup2(stdin_fd, 0)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    os.dup2(result_fd, keep_fd)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 65536)
    # signal dispositions are CPython's start-up ones already (the supervisor changes none)
    uid = h["uid"]
    os.chdir(SCRATCH)
    cpu = h["cpu_s"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (h["fsize"], h["fsize"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (h["nofile"], h["nofile"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (h["nproc"], h["nproc"]))
    resource.setrlimit(resource.RLIMIT_STACK, (h["stack"], h["stack"]))
    if h["as"]:
        resource.setrlimit(resource.RLIMIT_AS, (h["as"], h["as"]))
    if uid < 0:  # not root (isolation=none on a dev box): nothing to drop to
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # clears every capability: the program is an ordinary unprivileged user


WARM_ROUNDS = 16  # > CPython 3.11's quickening delay (8 calls): the harness code runs specialised


def warm_child_path():
    """Run the child's fixed per-test Python path here, in the supervisor, before the first fork.

    A forked child pays a copy-on-write page fault for every page it writes, and code the parent
    never ran writes a lot: unquickened bytecode, type-cache misses (`_PyType_Lookup` fills
    entries in the interpreter state), first-call symbol binding (`_dl_fixup` writes the GOT).
    Running the same harness functions here first (a tiny A+B program of ours through `run_job`
    over private pipes, a call-kind job in the "full" profile, the shutdown emulation, the set-up
    calls with values that change nothing) leaves all of that in the state a child needs, so each
    child only reads it. Nothing here runs a submitted program; nothing it changes survives it
    (`__main__`, argv, sys.path[0] and the std streams are restored).
    """
    saved_main, saved_argv, saved_path0 = sys.modules.get("__main__"), list(sys.argv), sys.path[0]
    read_end, write_end = os.pipe()
    try:
        # a typical tiny stdio program (trusted, ours) over private pipes: input(), split, int, print
        warm_code = "a, b = map(int, input().split())\nprint(a + b)\n"
        jobs = [{"kind": "stdio", "_code_obj": compile(warm_code, PROGRAM_FILE, "exec")}]
        if PROFILE == "full":
            jobs.append({"kind": "call", "code": "def f(x):\n    return x\n", "fn_name": "f", "input": "1\n"})
        for _ in range(WARM_ROUNDS):
            for job in jobs:
                os.write(write_end, b"1 2\n")
                sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(read_end, "rb", closefd=False)))
                sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write_end, "wb", closefd=False)))
                try:
                    run_job(job, write_end)
                    if not atexit._ncallbacks():  # never run a registered handler in the supervisor
                        _finalize_fast(0)
                finally:
                    sys.stdin, sys.stdout = sys.__stdin__, sys.__stdout__
                while select.select([read_end], [], [], 0)[0]:
                    os.read(read_end, 1 << 16)
            for which in (resource.RLIMIT_CPU, resource.RLIMIT_CORE, resource.RLIMIT_FSIZE, resource.RLIMIT_NOFILE,
                          resource.RLIMIT_NPROC, resource.RLIMIT_STACK):
                resource.setrlimit(which, resource.getrlimit(which))  # same values: binds prlimit64
            os.dup2(write_end, write_end)
            os.closerange(write_end + 1, write_end + 1)
            os.chdir(os.getcwd())
            os.setgid(os.getgid())
            os.setuid(os.getuid())
            # the set-up's module attribute look-ups, so the type cache already holds them
            for name in ("setsid", "dup2", "closerange", "chdir", "setgroups", "setgid", "setuid", "_exit", "execv"):
                getattr(os, name)
            for name in ("setrlimit", "RLIMIT_CPU", "RLIMIT_CORE", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
                         "RLIMIT_NPROC", "RLIMIT_STACK", "RLIMIT_AS"):
                getattr(resource, name)
    finally:
        os.close(read_end)
        os.close(write_end)
        sys.modules["__main__"] = saved_main
        sys.argv = saved_argv
        sys.path[0] = saved_path0


def load_native(path):
    """The C per-test loop (built by the host, bound read-only into the sandbox), or None."""
    if not path or path == "-":
        return None
    import _imp

    spec = types.SimpleNamespace(name="_xcoder_zygote", origin=path, loader=None, submodule_search_locations=None)
    module = _imp.create_dynamic(spec)
    _imp.exec_dynamic(module)
    return module


def serve(ctl_fd, native_path):
    """Parent loop; returns (job, result_fd) only in a forked child that must run a program."""
    global TMP_KEEP
    if IN_NAMESPACE:
        os.chmod("/tmp", 0o1777)  # the sandbox's private tmpfs, wiped by wipe_tmp after every test
        TMP_KEEP = frozenset(os.listdir("/tmp")) | {os.path.basename(SCRATCH)}
    native = load_native(native_path)  # before the warm-up: its mappings are part of the template
    sock = socket.socket(fileno=ctl_fd)
    # the C-level detach, bound now: the child drops the socket object's hold on the fd (closed by
    # child_setup's dup2/closerange) at the cost of one C call; `sock.close()` (socket.py code the
    # supervisor never runs) cost the child ~30 copy-on-write page faults
    detach_ctl = super(socket.socket, sock).detach
    for name in WARM_MODULES[PROFILE]:
        __import__(name)
    warm_child_path()
    # the children's `__main__`, built here once: (plain, with LCB's prelude names bound)
    plain = new_main_module(PROGRAM_FILE)
    with_prelude = new_main_module(PROGRAM_FILE)
    if PROFILE == "full":
        with_prelude.__dict__.update(_prelude_names())
    MAIN_TEMPLATES.update(plain=plain, prelude=with_prelude)
    import gc

    # Held for the supervisor's life: when a child returns from here to run its program, these
    # locals must not be deallocated (freeing the socket object and the module cost a child ~25
    # copy-on-write faults), only dereferenced.
    KEEP_ALIVE.extend((sock, native, detach_ctl, plain, with_prelude, gc))
    KEEP_ALIVE.extend((sys.modules["__main__"], sys.argv, sys.path[0]))  # what a child's fresh `__main__` replaces
    gc.collect()
    gc.freeze()  # keep warm objects out of the children's GC scans (fewer COW page copies)
    send_msg(sock, {"ready": True, "pid": os.getpid(), "native": native is not None})
    keep_fd = 3
    if native is not None:
        detach_ctl()  # the C loop owns the socket from here on
        native.init(ctl_fd, 1 if IN_NAMESPACE else 0, SCRATCH, "/tmp", sorted(TMP_KEEP), prepare)
        slot, payload = native.serve()  # returns in a forked child only, set up already
        job = PROGRAMS[slot]
    else:
        slot, payload = serve_python(sock, ctl_fd, detach_ctl, keep_fd)
        job = PROGRAMS[slot]
    if payload:  # a call-kind test's input
        job["input"] = payload.decode("utf-8")
    return job, keep_fd


def serve_python(sock, ctl_fd, detach_ctl, keep_fd):
    """The per-test loop in Python (when the C one is unavailable); returns in a child only."""
    poller = select.poll()  # one for the supervisor's life: the control socket stays registered
    poller.register(ctl_fd, select.POLLIN)
    while True:
        body, fds = QUEUED.pop() if QUEUED else recv_frame(sock)
        if body is None:
            os._exit(0)
        h = parse_header(body)
        if h is None or h["flags"] & FLAG_KILL or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            if h is None:
                send_report(sock, 0, REPORT_ERROR, -1)
            elif not h["flags"] & FLAG_KILL:  # a kill that crossed its test's report is stale
                send_report(sock, h["id"], REPORT_ERROR, len(fds))
            continue
        prep_end = JOB_HEADER_SIZE + h["prep_len"]
        if h["flags"] & FLAG_PREPARE:
            prepare(h["slot"], body[JOB_HEADER_SIZE:prep_end])
        wipe_scratch(h["uid"] if h["uid"] >= 0 else None)
        if IN_NAMESPACE:
            wipe_tmp()
        start = time.monotonic_ns()
        pid = os.fork()
        forked = time.monotonic_ns()
        if pid == 0:
            try:
                detach_ctl()
                child_setup(h, fds, keep_fd)
            except BaseException as exc:  # noqa: BLE001 - report and die: the judge failed, not the program
                message = SETUP_ERROR_PREFIX + repr(exc).encode("utf-8", "replace")
                for fd in (keep_fd, fds[3]):
                    try:
                        os.write(fd, message)
                        break
                    except OSError:
                        continue
                os._exit(125)
            return h["slot"], body[prep_end:]
        for fd in fds:
            os.close(fd)
        supervise(sock, poller, h, pid, start, forked)


def supervise(sock, poller, h, pid, start, forked):
    """Wait for the test process (wall limit, or a kill request from the host), reap it, sweep
    the namespace, send the report."""
    timed_out = killed_by_host = False
    monotonic_ns = time.monotonic_ns
    deadline = start + h["wall_ns"]
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    try:
        while True:
            remaining = deadline - monotonic_ns()
            if remaining <= 0:
                timed_out = True
                break
            exited = host_msg = False
            for fd, _event in poller.poll(remaining / 1e6 + 1):
                if fd == pidfd:
                    exited = True
                else:
                    host_msg = True
            if exited:
                break
            if host_msg:  # the control socket: a kill request, the next job, or the host went away
                msg, extra = recv_frame(sock)
                if msg is None:
                    os._exit(0)
                other = parse_header(msg)
                if other is not None and other["flags"] & FLAG_KILL:
                    for fd in extra:
                        os.close(fd)
                    if other["id"] != h["id"]:
                        continue  # meant for a test that already ended
                    killed_by_host = True
                    break
                if QUEUED:
                    os._exit(3)  # a second queued job: the host broke the protocol
                QUEUED.append((msg, extra))  # the next test: started right after this one
    finally:
        poller.unregister(pidfd)
    if timed_out or killed_by_host:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    reaped = monotonic_ns()
    os.close(pidfd)
    flags = (REPORT_TIMED_OUT if timed_out else 0) | (REPORT_KILLED_BY_HOST if killed_by_host else 0)
    if kill_all_others(pid):
        flags |= REPORT_CLEAN
    end = monotonic_ns()
    send_report(sock, h["id"], flags, status, reaped - start, int((usage.ru_utime + usage.ru_stime) * 1e9),
                usage.ru_maxrss, usage.ru_minflt, forked - start, end - start, end - reaped)


def zygote_main():
    global SCRATCH, IN_NAMESPACE, PROFILE, PROGRAM_FILE
    ctl_fd = int(sys.argv[1])
    IN_NAMESPACE = sys.argv[2] == "ns"
    SCRATCH = os.path.join(sys.argv[3], "run")
    PROGRAM_FILE = os.path.join(SCRATCH, PROGRAM_PATH)
    PROFILE = sys.argv[4]
    native_path = sys.argv[5] if len(sys.argv) > 5 else "-"
    del sys.argv[1:]
    os.environ.pop("LD_BIND_NOW", None)  # symbols are bound by now; programs get the plain environment
    os.environ["PWD"] = SCRATCH  # as a shell sets it for `cd SCRATCH && python3 prog.py`
    return serve(ctl_fd, native_path)
