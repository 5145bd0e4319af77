"""Code that runs INSIDE the sandboxed process: turns a job into "python3 prog.py" semantics.

Stdlib only and self-contained: the host sends this module into the sandbox compiled and
marshalled, with `zygote.py` (`warm.SUPERVISOR_BOOT` installs both under their real names; the
sandbox cannot import the package). `run_job` runs in a forked child of the warm interpreter,
whose uncaught exceptions, `SystemExit`, non-daemon threads, atexit handlers and final stdout
flush follow CPython's own shutdown path (or `conclude`'s emulation of it), exactly as for
`python3 prog.py`. The host imports it too, for `CALL_PRELUDE` and `RESULT_VALUE`.
"""

import atexit  # builtin modules, imported here (not per test): an import statement in a forked
import builtins  # child walks the import machinery and touches pages the supervisor never warmed
import io
import os
import sys
import types

PROGRAM_PATH = "prog.py"  # relative to the per-test scratch dir (cwd), like `python3 prog.py`

# LiveCodeBench's call-based prelude (lcb_runner/evaluation/testing_util.py `import_string`):
# LeetCode solutions use `List`, `defaultdict`, `heapq` ... without importing them.
CALL_PRELUDE = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\n"
    "import statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\n"
    "import json\n"
)


def reset_std_streams() -> None:
    """Fresh sys.std* objects over fds 0/1/2, configured as CPython does at start-up for
    non-tty streams (block-buffered stdout, line-buffered stderr with backslashreplace)."""
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "rb", closefd=False)), encoding="utf-8", errors="strict"
    )
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "wb", closefd=False)), encoding="utf-8", errors="strict"
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "wb", closefd=False)),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def new_main_module(path: str) -> types.ModuleType:
    """`__main__` as the interpreter sets it up for `python3 prog.py` (`__file__` absolute)."""
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    main.__cached__ = None
    return main


def fresh_main_module(path: str, template: types.ModuleType | None = None, directory: str | None = None) -> dict:
    """Install a fresh `__main__` (and sys.argv/sys.path[0]) as for `python3 prog.py`: argv[0]
    as typed. `template`: a module the warm supervisor built with `new_main_module` and never
    used; in a forked child it is pristine (copy-on-write), so it serves as is, no allocation."""
    main = template if template is not None else new_main_module(path)
    sys.modules["__main__"] = main
    sys.argv = [PROGRAM_PATH]
    sys.path[0] = directory if directory is not None else os.path.dirname(path)
    return main.__dict__


RESULT_VALUE = b"\x01"  # result fd: this byte + the return value's JSON (the common case: no record to encode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_result(result_fd: int, record: dict) -> None:
    """A harness outcome other than a returned value, as a JSON record."""
    import json

    _write_all(result_fd, json.dumps(record).encode())


def run_job(job: dict, result_fd: int) -> None:
    """Execute one test's program. kind stdio: the program alone. kind call: the program, then
    `fn_name(*args)` with one JSON value per stdin line; the JSON of the return value goes to
    `result_fd` (the program's own prints stay on stdout). kind assert: program, then test code.
    Exceptions propagate on purpose (traceback + exit 1 as under `python3 prog.py`)."""
    kind = job["kind"]
    path = job.get("_path") or os.path.join(os.getcwd(), PROGRAM_PATH)
    template = job.get("_main")  # holds the prelude's names already when this kind needs them
    scope = fresh_main_module(path, template, job.get("_dir"))
    if (kind != "stdio" or job.get("prelude")) and template is None:
        names = job.get("_prelude_names")
        if names is not None:  # the prelude's bindings, computed once by the warm supervisor
            scope.update(names)
        else:
            exec(job.get("_prelude_obj") or compile(CALL_PRELUDE, "<prelude>", "exec"), scope)
    exec(job.get("_code_obj") or compile(job["code"], path, "exec"), scope)
    if kind == "assert":
        exec(job.get("_test_obj") or compile(job.get("test_code") or "", "test.py", "exec"), scope)
        return
    if kind == "call":
        call_function(scope, job["fn_name"], job["input"], result_fd)


def call_function(scope: dict, fn_name: str, arguments: str, result_fd: int) -> None:
    """The call kind after the program ran in `scope`: `Solution().fn_name` (else the top-level
    `fn_name`) called with one JSON value per line of `arguments`; the return value's JSON goes
    to `result_fd`. The function's own exceptions propagate (traceback + exit 1, like a script)."""
    loads, dumps = _json_codec()
    if "Solution" in scope and isinstance(scope["Solution"], type) and hasattr(scope["Solution"], fn_name):
        fn = getattr(scope["Solution"](), fn_name)
    elif fn_name in scope:
        fn = scope[fn_name]
    else:
        _write_result(result_fd,
                      {"ok": False,
                       "error": f"function {fn_name!r} not found (neither Solution.{fn_name} nor top-level)"})
        return
    args = []
    for number, line in enumerate(arguments.rstrip("\n").split("\n") if arguments.strip() else [], 1):
        try:
            args.append(loads(line))
        except ValueError:
            _write_result(result_fd,
                          {"ok": False, "harness": True,
                           "error": f"test input line {number} is not JSON: {line[:200]!r}"})
            return
    value = fn(*args)
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        _write_result(result_fd, {"ok": False, "error": f"return value is not JSON-serialisable: {exc}"})
        return
    _write_all(result_fd, RESULT_VALUE + text.encode())


_JSON_CODEC = None  # (loads, dumps), built once (in the supervisor's warm-up: children only use it)
_JSON_WS = " \t\n\r"  # json.decoder.WHITESPACE


def _json_codec():
    """`json.loads` / `json.dumps` with default arguments, minus their Python frames (three each,
    over the `_json` C scanner and encoder; in a forked test process every frame costs
    copy-on-write faults): the same acceptance rules and output, by the same C code."""
    global _JSON_CODEC
    if _JSON_CODEC is not None:
        return _JSON_CODEC
    import json
    import json.decoder
    import json.encoder

    scan = json._default_decoder.scan_once
    c_encoder = json.encoder.c_make_encoder
    if c_encoder is None or not json.decoder.c_scanstring:  # no _json accelerator: the plain functions
        _JSON_CODEC = (json.loads, json.dumps)
        return _JSON_CODEC
    default = json._default_encoder
    encode = c_encoder({}, default.default, json.encoder.encode_basestring_ascii, None, default.key_separator,
                       default.item_separator, default.sort_keys, default.skipkeys, default.allow_nan)
    ascii_string = json.encoder.encode_basestring_ascii

    def loads(text):
        if text.startswith("\ufeff"):
            raise ValueError("Unexpected UTF-8 BOM")
        try:
            value, end = scan(text, len(text) - len(text.lstrip(_JSON_WS)))
        except StopIteration:
            raise ValueError("Expecting value") from None
        if text[end:].strip(_JSON_WS):
            raise ValueError("Extra data")
        return value

    def dumps(value):
        return ascii_string(value) if isinstance(value, str) else "".join(encode(value, 0))

    _JSON_CODEC = (loads, dumps)
    return _JSON_CODEC


def _program_traceback(exc: BaseException):
    """Drop the harness's own frames so the traceback starts at the program, as for a script."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
        tb = tb.tb_next
    return tb


def _system_exit_status(exc: SystemExit) -> int:
    """CPython's handle_system_exit: None -> 0, int -> that status, anything else is printed
    to stderr and gives status 1."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):  # CPython: (int)PyLong_AsLong(code), -1 when it does not fit a C long
        return code & 0xFF if -(2**63) <= code < 2**63 else 255
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:  # noqa: BLE001
        pass
    return 1


def _file_is_closed(stream) -> bool:
    """CPython's file_is_closed: a stream whose `closed` cannot be read counts as open."""
    try:
        return bool(stream.closed)
    except Exception:  # noqa: BLE001
        return False


def _unraisable(stream, exc: BaseException) -> None:
    try:
        sys.stderr.write(f"Exception ignored in: {stream!r}\n{type(exc).__name__}: {exc}\n")
    except Exception:  # noqa: BLE001
        pass


def _finalize_fast(status: int) -> int:
    """What Py_FinalizeEx does that a program can observe: join non-daemon threads, run
    atexit callbacks, flush sys.stdout and sys.stderr unless closed (a failed flush gives status
    120; stdout's failure is reported on stderr), then the original std objects, as their
    finalizers would (errors reported, status unchanged)."""
    threading = sys.modules.get("threading")  # not imported => no threads to wait for
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:  # noqa: BLE001
            pass
    atexit._run_exitfuncs()
    out, err = sys.stdout, sys.stderr
    if out is not None and not _file_is_closed(out):
        try:
            out.flush()
        except Exception as exc:  # noqa: BLE001 - CPython: PyErr_WriteUnraisable + exit 120
            _unraisable(out, exc)
            status = 120
    if err is not None and not _file_is_closed(err):
        try:
            err.flush()
        except Exception:  # noqa: BLE001 - CPython: cleared, exit 120
            status = 120
    for original in (sys.__stdout__, sys.__stderr__):
        if original is not None and original is not out and original is not err and not _file_is_closed(original):
            try:
                original.flush()
            except Exception as exc:  # noqa: BLE001 - a finalizer's error: reported, status kept
                _unraisable(original, exc)
    return status


def holds_own_streams(scope: dict) -> bool:
    """Whether the program's globals hold an io object of its own (not the std streams, not a
    StringIO/BytesIO): its buffered output would be written by its finalizer at interpreter
    shutdown, so the run needs the real finalization, not `_finalize_fast`."""
    import _io

    std = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)
    for value in scope.values():
        if (isinstance(value, _io._IOBase) and not isinstance(value, (_io.StringIO, _io.BytesIO))
                and all(value is not s for s in std)):
            return True
    return False


_OPENED_FOR_WRITE: list = []  # set by the audit hook below (one per process: this is a fresh one)


def _audit_open_for_write(event, args):
    if event == "open" and not _OPENED_FOR_WRITE:
        mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
        ):
            _OPENED_FOR_WRITE.append(True)


def run_as_main(job: dict, result_fd: int) -> None:
    """Run the job in this (fresh, forked) process and exit with CPython's exit status."""
    sys.addaudithook(_audit_open_for_write)
    try:
        run_job(job, result_fd)
    except BaseException as exc:  # noqa: BLE001 - the program's uncaught exception (or SystemExit)
        conclude(exc, bool(_OPENED_FOR_WRITE) or holds_own_streams(sys.modules["__main__"].__dict__))
        return
    conclude(None, bool(_OPENED_FOR_WRITE) or holds_own_streams(sys.modules["__main__"].__dict__))


def conclude(exc: BaseException | None, real_finalization: bool) -> None:
    """End a program that ran in this process (here or in the supervisor's C fast path) with the
    exit status and output CPython gives `python3 prog.py`.

    Fast path: emulate interpreter shutdown and `os._exit` (a full Py_Finalize of a warm
    interpreter costs ~6 ms per test). If the program opened anything for writing or holds io
    objects of its own (their unflushed buffers are written only by finalization), re-raise or
    return and let CPython finalize for real."""
    if exc is None:
        status = 0
    elif real_finalization:
        raise exc
    elif isinstance(exc, SystemExit):
        status = _system_exit_status(exc)
    else:
        trimmed = _program_traceback(exc)
        exc.__traceback__ = trimmed
        sys.excepthook(type(exc), exc, trimmed)
        status = 1
    if real_finalization:
        return
    os._exit(_finalize_fast(status))
