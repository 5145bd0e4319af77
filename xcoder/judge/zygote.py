"""The warm supervisor that runs INSIDE the sandbox: loads programs and forks a child per test.

Stdlib only, with `child.py` its one sibling: the host sends both as marshalled code and the
sandbox's start-up (`warm.SUPERVISOR_BOOT`) installs them under their real names, as
`xcoder.judge.child` and `xcoder.judge.zygote` (the sandbox cannot import the package itself);
`main()` is the entry point. On the host this module imports like any other (`bench.py` reads
`WARM_MODULES`; tests call `install_site`).

The per-test loop is C (`_zygote.c`, protocol in `protocol.py`): frames in, stdin memfd, pipes,
fork, the child's set-up (fds, rlimits, uid drop), wall limit on a pidfd, output streamed back,
reap, namespace sweep, report. Python does what needs Python objects: it loads a program into a
slot (`prepare`, called back by the C loop), warms the state every child is forked from, and,
in a child, runs what the C fast path hands back (`main`: `child.run_as_main` or
`child.conclude`, or the exec of a C++ binary).
"""

import atexit
import builtins
import io
import marshal
import os
import sys
import types

from xcoder.judge.child import (
    CALL_PRELUDE,
    PROGRAM_PATH,
    _finalize_fast,
    _write_all,
    call_function,
    conclude,
    new_main_module,
    run_as_main,
    run_job,
)

# Fork cost grows with the number of memory mappings, and every extension module (.so) adds
# ~5: the supervisor imports no extension module (no json, struct, shutil, ctypes, socket).
SCRATCH = "/tmp/run"  # per-test scratch dir; set from argv (sandbox: its private tmpfs)
PROGRAM_FILE = "/tmp/run/prog.py"  # SCRATCH/PROGRAM_PATH, the compiled program's filename
IN_NAMESPACE = True  # False in isolation=none: no pid namespace, so never kill(-1)
TMP_KEEP = frozenset()  # what the sandbox's /tmp holds before any test (bwrap's mount points + scratch)
PROFILE = "lean"  # "lean" | "full": which WARM_MODULES this supervisor pre-imports
NATIVE = None  # the C loop's module (load_native)
OOM_FD = -1  # the worker's memory.oom_control, opened read-only by the host (or -1)
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
PROGRAMS = {}  # slot -> prepared program (the host decides which slot holds what)
MAIN_TEMPLATES = {}  # "plain" / "prelude" -> the children's `__main__` (built once by `serve`)
KEEP_ALIVE = []  # objects `serve` must not free when a child returns from it (see there)


def prepare(slot, payload):
    """Host's program description for `slot`, loaded once, inherited by every child."""
    PROGRAMS.pop(slot, None)
    job = marshal.loads(payload)
    if job.get("language") == "python":
        _attach_code_objects(job)
        # what run_job needs, set here once rather than written by every child
        job["_main"] = MAIN_TEMPLATES["prelude" if (job.get("kind") != "stdio" or job.get("prelude")) else "plain"]
        job["_path"], job["_dir"] = PROGRAM_FILE, SCRATCH  # the child's cwd is SCRATCH
    PROGRAMS[slot] = job
    _register_fast(slot, job)


def _register_fast(slot, job):
    """Tell the C loop what a child can run without returning to Python (its fast path)."""
    if job.get("language") == "cpp":
        NATIVE.register_binary(slot, job["binary"])
        return
    kind = job.get("kind")
    code = job.get("_code_obj")
    if code is None or kind not in ("stdio", "assert", "call"):
        return  # a program the child must compile (and fail on) as python3 would
    test = job.get("_test_obj") if kind == "assert" else None
    if kind == "assert" and test is None:
        return
    if kind == "call":
        NATIVE.register_exec(slot, code, None, job["_main"], job["fn_name"], call_function)
    else:
        NATIVE.register_exec(slot, code, test, job["_main"])


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
        scope = dict(types.ModuleType("__main__").__dict__, __file__=PROGRAM_FILE, __builtins__=builtins,
                     __cached__=None)
        before = dict(scope)
        exec(_compiled(CALL_PRELUDE, "<prelude>"), scope)
        _PRELUDE_NAMES = {k: v for k, v in scope.items() if k not in before or before[k] is not v}
    return _PRELUDE_NAMES


def _with_filename(code, filename):
    """`code` (and every function/class body inside it) as if compiled from `filename`."""
    consts = tuple(_with_filename(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _attach_code_objects(job):
    """Code objects for the children, made here once per program (compiling in each forked child
    costs ~1 ms of page faults). The host sends the ones it compiled (marshalled: no compile
    here either); source the host could not compile is left for the child to raise on."""
    try:
        if job.get("code_marshal") is not None:
            job["_code_obj"] = _with_filename(marshal.loads(job.pop("code_marshal")), PROGRAM_FILE)
        else:
            job["_code_obj"] = _compiled(job["code"], PROGRAM_FILE)  # in the child's cwd
        if job.get("kind") != "stdio" or job.get("prelude"):
            job["_prelude_obj"] = _compiled(CALL_PRELUDE, "<prelude>")
            job["_prelude_names"] = _prelude_names()
        if job.get("kind") == "assert":
            if job.get("test_marshal") is not None:
                job["_test_obj"] = marshal.loads(job.pop("test_marshal"))
            else:
                job["_test_obj"] = _compiled(job.get("test_code") or "", "test.py")
    except Exception:  # noqa: BLE001 - the child compiles again and reports it like python3
        pass


WARM_ROUNDS = 16  # > CPython 3.11's quickening delay (8 calls): the harness code runs specialised


def warm_child_path():
    """Run the child's fixed per-test Python path here, in the supervisor, before the first fork.

    A forked child pays a copy-on-write page fault for every page it writes, and code the parent
    never ran writes a lot: unquickened bytecode, type-cache misses (`_PyType_Lookup` fills
    entries in the interpreter state), first-call symbol binding (`_dl_fixup` writes the GOT).
    Running the same harness functions here first (a tiny A+B program of ours through `run_job`
    over private pipes, a call-kind job in the "full" profile, the shutdown emulation) leaves all
    of that in the state a child needs, so each child only reads it. Nothing here runs a submitted program;
    nothing it changes survives it
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
                os.set_blocking(read_end, False)
                try:
                    while os.read(read_end, 1 << 16):
                        pass
                except BlockingIOError:
                    pass
                os.set_blocking(read_end, True)
    finally:
        os.close(read_end)
        os.close(write_end)
        sys.modules["__main__"] = saved_main
        sys.argv = saved_argv
        sys.path[0] = saved_path0


def import_warm_modules(names, native):
    """Import what children should find warm. `random` is imported without its
    at-fork hook (`Random.seed` in Python: ~45 copy-on-write faults and ~50 us in every forked
    child) and `native.reseed` is registered instead: the same fresh state from os.urandom, by
    the C seed method `Random.seed(None)` ends in, and gauss_next reset — in every child we fork
    and in the program's own forks, as random's hook does under python3."""
    for name in names:
        if name != "random":
            __import__(name)
            continue
        register = os.register_at_fork
        os.register_at_fork = lambda **_hooks: None
        try:
            import random
        finally:
            os.register_at_fork = register
        import _random

        native.set_reseed(random._inst, _random.Random.seed)
        os.register_at_fork(after_in_child=native.reseed)


def load_native(path):
    """The C per-test loop (built by the host, bound read-only into the sandbox)."""
    import _imp

    spec = types.SimpleNamespace(name="_xcoder_zygote", origin=path, loader=None, submodule_search_locations=None)
    module = _imp.create_dynamic(spec)
    _imp.exec_dynamic(module)
    return module


def serve(ctl_fd, native_path):
    """Parent loop; returns (job, result_fd) only in a forked child that must run a program."""
    global TMP_KEEP
    if IN_NAMESPACE:
        os.chmod("/tmp", 0o1777)  # the sandbox's private tmpfs, wiped by the C loop after every test
        TMP_KEEP = frozenset(os.listdir("/tmp")) | {os.path.basename(SCRATCH)}
    global NATIVE
    native = NATIVE = load_native(native_path)  # before the warm-up: its mappings are part of the template
    import_warm_modules(WARM_MODULES[PROFILE], native)
    warm_child_path()
    # the children's `__main__`, built here once: (plain, with LCB's prelude names bound)
    plain = new_main_module(PROGRAM_FILE)
    with_prelude = new_main_module(PROGRAM_FILE)
    if PROFILE == "full":
        with_prelude.__dict__.update(_prelude_names())
    MAIN_TEMPLATES.update(plain=plain, prelude=with_prelude)
    import gc

    # Held for the supervisor's life: when a child returns from here to run its program, these
    # locals must not be deallocated (freeing them cost a child copy-on-write faults), only
    # dereferenced.
    KEEP_ALIVE.extend((native, plain, with_prelude, gc))
    KEEP_ALIVE.extend((sys.modules["__main__"], sys.argv, sys.path[0]))  # what a child's fresh `__main__` replaces
    # before the baseline: the C loop's buffers are resident from now on
    native.init(ctl_fd, 1 if IN_NAMESPACE else 0, SCRATCH, "/tmp", sorted(TMP_KEEP), prepare, OOM_FD)
    # what fresh_main_module sets, built once (a child only references them)
    main_argv, main_path0 = [PROGRAM_PATH], SCRATCH
    native.set_main(main_argv, main_path0)
    KEEP_ALIVE.extend((main_argv, main_path0))
    gc.collect()
    gc.freeze()  # keep warm objects out of the children's GC scans (fewer COW page copies)
    hello = marshal.dumps({"ready": True, "pid": os.getpid(), "native": True})
    _write_all(ctl_fd, len(hello).to_bytes(4, "little") + hello)
    # returns in a forked child only, set up already: (slot, payload) to run, or ("ran", exception
    # or None, opened_for_write) when the C loop ran the program itself and Python concludes
    result = native.serve()
    if result[0] == "ran":
        return None, 3, (result[1], bool(result[2]))
    slot, payload = result
    job = PROGRAMS[slot]
    if payload:  # a call-kind test's input
        job["input"] = payload.decode("utf-8")
    return job, 3, None


def install_site(site_dirs, prefix=None, exec_prefix=None):
    """What `site` gives a `python3 prog.py` that programs can see, without running `site`
    (the supervisor starts with -S): the site-packages dirs on sys.path (plus the directories
    named by plain-path lines of their .pth files, as `site.addsitedir` adds them) and the
    `exit`/`quit`/`help`/`copyright`/`credits`/`license` builtins. Not done: the `import` lines
    of .pth files (packaging hooks: setuptools' distutils shim, editable-install finders) and
    sitecustomize. Importing them made every forked test process ~2 MB bigger to copy. In a
    venv, `site` also sets sys.prefix/exec_prefix to the venv: the host's values are passed."""
    import _sitebuiltins

    if prefix:
        sys.prefix = prefix
    if exec_prefix:
        sys.exec_prefix = exec_prefix

    for name in ("quit", "exit"):
        setattr(builtins, name, _sitebuiltins.Quitter(name, "Ctrl-D (i.e. EOF)"))
    builtins.help = _sitebuiltins._Helper()
    builtins.copyright = _sitebuiltins._Printer("copyright", sys.copyright)
    builtins.credits = _sitebuiltins._Printer("credits",
                                              "Thanks to CWI, CNRI, BeOpen.com, Zope Corporation and a cast of "
                                              "thousands")
    builtins.license = _sitebuiltins._Printer("license", "See https://www.python.org/psf/license/")
    for directory in site_dirs:
        if not os.path.isdir(directory):
            continue
        if directory not in sys.path:
            sys.path.append(directory)
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".pth") and not n.startswith("."))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                path = os.path.abspath(os.path.join(directory, line))
                if os.path.exists(path) and path not in sys.path:  # a dir, or a zip/egg
                    sys.path.append(path)


def zygote_main():
    global SCRATCH, IN_NAMESPACE, PROFILE, PROGRAM_FILE, OOM_FD
    ctl_fd = int(sys.argv[1])
    IN_NAMESPACE = sys.argv[2] == "ns"
    SCRATCH = os.path.join(sys.argv[3], "run")
    PROGRAM_FILE = os.path.join(SCRATCH, PROGRAM_PATH)
    PROFILE = sys.argv[4]
    native_path = sys.argv[5]
    OOM_FD = int(sys.argv[6]) if len(sys.argv) > 6 else -1
    site_dirs = sys.argv[7] if len(sys.argv) > 7 else ""
    prefixes = sys.argv[8:10] if len(sys.argv) > 9 else [None, None]
    del sys.argv[1:]
    _hide_own_modules()
    install_site(site_dirs.split(os.pathsep) if site_dirs else [], *prefixes)
    os.environ.pop("LD_BIND_NOW", None)  # symbols are bound by now; programs get the plain environment
    os.environ["PWD"] = SCRATCH  # as a shell sets it for `cd SCRATCH && python3 prog.py`
    return serve(ctl_fd, native_path)


def _hide_own_modules():
    """Programs find no `xcoder` module, as under `python3 prog.py` in the sandbox: the
    supervisor's own modules leave sys.modules (their functions keep their globals; the module
    objects stay alive in KEEP_ALIVE, so no child ever frees them)."""
    for name in [n for n in sys.modules if n == "xcoder" or n.startswith("xcoder.")]:
        KEEP_ALIVE.append(sys.modules.pop(name))


def main():
    """The supervisor's entry point (`warm.SUPERVISOR_BOOT`). Returns in a forked child only,
    whose program then runs: sys.std* are the interpreter's own start-up objects (never used by
    the supervisor) over fds 0/1/2, which now are the test's stdin memfd and stdout/stderr
    pipes, as fresh as in a new process."""
    job, result_fd, outcome = zygote_main()
    if outcome is not None:  # the C loop ran the program already; what is left needs Python
        conclude(*outcome)
    elif job["language"] == "cpp":
        os.execv(job["binary"], [job["binary"]])
    else:
        run_as_main(job, result_fd)
