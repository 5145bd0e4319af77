"""A program behaves exactly as under `python3 prog.py` (the warm fork server must be invisible)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from xcoder.judge import JudgeTest, Limits, Program, Verdict

PARITY_PROGRAMS = {
    "main_guard": ("if __name__ == '__main__':\n    print('main', __name__)\n", ""),
    "input_lines": ("n = int(input())\nprint(sum(int(input()) for _ in range(n)))\n", "3\n1\n2\n3\n"),
    "stdin_read": ("import sys\ndata = sys.stdin.read().split()\nprint(len(data), data[-1])\n", "a b\nc d e\n"),
    "buffer_readline": (
        "import sys\nr = sys.stdin.buffer.readline\nprint(r(), r(), r())\n", "first\nsecond\n"
    ),
    "buffer_read": ("import sys\nprint(len(sys.stdin.buffer.read()))\n", "x" * 5000),
    "readline_at_eof": ("import sys\nprint(repr(sys.stdin.readline()))\n", ""),
    "input_at_eof": ("print(input())\n", ""),
    "sys_exit_code": ("import sys\nprint('before')\nsys.exit(3)\n", ""),
    "sys_exit_huge_code": ("import sys\nsys.exit(2**70)\n", ""),
    "sys_exit_true": ("import sys\nsys.exit(True)\n", ""),
    "exit_after_output": ("print('answer')\nexit()\nprint('never')\n", ""),
    "own_excepthook": ("import sys\nsys.excepthook = lambda *a: print('hooked', a[0].__name__)\nraise KeyError(1)\n",
                       ""),
    "exit_message": ("print('x')\nexit('bye')\n", ""),
    "quit_zero": ("print('q')\nquit()\nprint('never')\n", ""),
    "uncaught": ("def f():\n    raise KeyError('k')\nprint('partial')\nf()\n", ""),
    "default_recursion_limit": ("def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\nprint(f(5000))\n", ""),
    "raised_recursion_limit": (
        "import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\n"
        "print(f(100000))\n",
        "",
    ),
    "non_daemon_thread": (
        "import threading, time\ndef w():\n    time.sleep(0.2)\n    print('thread done')\n"
        "threading.Thread(target=w).start()\nprint('main done')\n",
        "",
    ),
    "thread_stack_recursion": (
        "import sys, threading\nsys.setrecursionlimit(10**6)\nthreading.stack_size(256 << 20)\n"
        "def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\n"
        "t = threading.Thread(target=lambda: print(f(200000)))\nt.start()\nt.join()\n",
        "",
    ),
    "atexit": ("import atexit\natexit.register(lambda: print('bye'))\nprint('hi', end='')\n", ""),
    "no_trailing_newline": ("import sys\nsys.stdout.write('abc')\n", ""),
    "own_stdout_file": ("out = open(1, 'w', closefd=False)\nout.write('via fd 1\\n')\n", ""),
    "stderr_and_stdout": ("import sys\nprint('o')\nprint('e', file=sys.stderr)\n", ""),
    "argv_and_file": (
        "import sys, os\n"
        "print(sys.argv[0], os.path.basename(__file__), os.path.isabs(__file__), sys.path[0] == os.getcwd())\n",
        "",
    ),
    "unicode": ("s = input()\nprint(s[::-1], len(s))\n", "héllo→ü\n"),
    "stdout_closed_by_the_program": ("import sys\nprint(42)\nsys.stdout.close()\n", ""),
    "own_wrapper_unflushed": (
        "import io, sys\nout = io.TextIOWrapper(sys.stdout.buffer, write_through=False)\nout.write('via wrapper\\n')\n",
        ""),
}


def _python3(code: str, stdin: str, tmp_path) -> subprocess.CompletedProcess:
    prog = tmp_path / "prog.py"
    prog.write_text(code)
    return subprocess.run(
        [sys.executable, "prog.py"], input=stdin.encode(), capture_output=True, cwd=tmp_path, timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


@pytest.mark.parametrize("prelude", [False, True], ids=["plain", "lcb-prelude"])
@pytest.mark.parametrize("name", sorted(PARITY_PROGRAMS))
def test_same_stdout_and_exit_status_as_python3_prog_py(judge, tmp_path, name, prelude):
    """Both sandbox profiles (the plain `__main__` and the one with LiveCodeBench's names bound)."""
    code, stdin = PARITY_PROGRAMS[name]
    ref = _python3(code, stdin, tmp_path)
    (res,) = judge.run(Program(code), [JudgeTest(stdin, None)], limits=Limits(time_s=20, memory_mb=1024),
                       prelude=prelude)
    assert res.stdout == ref.stdout.decode(), (res.stdout, ref.stdout)
    assert res.exit_code == ref.returncode, (res, ref.stderr)
    assert (res.verdict == Verdict.AC) == (ref.returncode == 0)
    ref_err = ref.stderr.decode().strip().splitlines()
    got_err = res.stderr.strip().splitlines()
    assert got_err[-1:] == ref_err[-1:]  # same exception line / exit message


def test_traceback_starts_at_the_program(judge):
    (res,) = judge.run(Program("x = 1\nraise ValueError('v')\n"), [JudgeTest("", None)])
    lines = res.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith('  File "/') and lines[1].endswith('/prog.py", line 2, in <module>')


def test_each_test_is_a_fresh_process(judge):
    code = "import random, os\nprint(random.getrandbits(64), os.getpid())\nimport sys\nsys.modules['math'].pi = 3\n"
    res = judge.run(Program(code), [JudgeTest("", None) for _ in range(4)])
    assert len({r.stdout for r in res}) == 4  # random reseeded per test
    (check,) = judge.run(Program("import math\nprint(math.pi > 3.14)"), [JudgeTest("", "True")])
    assert check.verdict == Verdict.AC  # module state does not leak between tests


def test_random_is_reseeded_per_test_where_it_is_preimported(judge):
    """The call-kind sandbox imports `random` before forking (LCB's prelude binds its names):
    each test still starts from its own random state, as a fresh process does."""
    code = "def f(x):\n    return [random.getrandbits(62), randint(1, 10**18)]\n"
    res = judge.run(Program(code), [JudgeTest("0", None) for _ in range(5)], kind="call", fn_name="f")
    assert all(r.verdict == Verdict.AC for r in res), res
    assert len({r.stdout for r in res}) == 5, [r.stdout for r in res]


def test_a_programs_own_forks_get_their_own_random_state(judge, tmp_path):
    """As under python3 (random's at-fork hook), in both sandbox profiles."""
    code = ("import os, random\nr, w = os.pipe()\npid = os.fork()\nif pid == 0:\n"
            "    os.write(w, repr(random.random()).encode())\n    os._exit(0)\nos.waitpid(pid, 0)\n"
            "print('same' if os.read(r, 100).decode() == repr(random.random()) else 'different')\n")
    ref = _python3(code, "", tmp_path)
    assert ref.stdout.decode() == "different\n"
    for prelude in (False, True):
        (res,) = judge.run(Program(code), [JudgeTest("", "different")], prelude=prelude)
        assert res.verdict == Verdict.AC, (prelude, res)


def test_site_packages_are_importable_as_under_python3(judge, tmp_path):
    """The supervisor starts without `site` (-S); programs still see what it would add."""
    code = ("import sys\nprint(sorted(p for p in sys.path if p.endswith('site-packages')))\n"
            "print(callable(exit), callable(quit))\nprint(sys.prefix, sys.exec_prefix)\n")
    ref = _python3(code, "", tmp_path)
    (res,) = judge.run(Program(code), [JudgeTest("", ref.stdout.decode())])
    assert res.verdict == Verdict.AC, (res.stdout, ref.stdout)


def test_ten_megabytes_of_output_streams_and_is_judged_fast(judge):
    code = "import sys\nsys.stdout.write(('y' * 99 + '\\n') * 100000)\n"
    expected = ("y" * 99 + "\n") * 100000
    start = time.monotonic()
    (res,) = judge.run(Program(code), [JudgeTest("", expected)], limits=Limits(time_s=10))
    assert res.verdict == Verdict.AC
    assert time.monotonic() - start < 2.0
    assert res.truncated  # the TestResult keeps a prefix; the comparison saw everything


def test_numpy_imports_under_a_memory_limit(judge):
    code = "import numpy as np\nprint(int(np.arange(10).sum()))\n"
    (res,) = judge.run(Program(code), [JudgeTest("", "45")], limits=Limits(time_s=20, memory_mb=256))
    assert res.verdict == Verdict.AC, res.stderr


def test_cpu_limit_separate_from_wall(judge):
    code = ("import threading\ndef spin():\n    while True:\n        pass\nfor _ in range(2):\n"
            "    threading.Thread(target=spin, daemon=True).start()\nspin()\n")
    (res,) = judge.run(Program(code), [JudgeTest("", None)], limits=Limits(time_s=5, cpu_s=1))
    assert res.verdict == Verdict.TLE


def test_cpp_runtime_verdicts(judge):
    segv = "int main(){ volatile int *p = 0; *p = 1; return 0; }"
    (res,) = judge.run(Program(segv, "cpp"), [JudgeTest("", None)])
    assert res.verdict == Verdict.RE and res.signal == 11
    loop = "int main(){ volatile unsigned long x = 0; while (true) x++; }"
    (res,) = judge.run(Program(loop, "cpp"), [JudgeTest("", None)], limits=Limits(time_s=1))
    assert res.verdict == Verdict.TLE
    hog = ("#include <vector>\n#include <cstdio>\n"
           "int main(){ std::vector<char> v(1ull << 30, 1); std::printf(\"%d\", v[12345]); }")
    (res,) = judge.run(Program(hog, "cpp"), [JudgeTest("", None)], limits=Limits(time_s=5, memory_mb=128))
    assert res.verdict == Verdict.MLE, res
    deep = ("#include <cstdio>\nint f(int n){ return n ? 1 + f(n - 1) : 0; }\n"
            "int main(){ std::printf(\"%d\\n\", f(1000000)); }")
    (res,) = judge.run(Program(deep.replace("-O2", ""), "cpp"), [JudgeTest("", "1000000")],
                       limits=Limits(time_s=5, memory_mb=256))
    assert res.verdict == Verdict.AC, res


def test_cpp_compiled_once_per_distinct_program(judge):
    import uuid

    code = "#include <cstdio>\nint main(){ int a; std::scanf(\"%d\", &a); std::printf(\"%d\\n\", a * 3); }\n"
    code += f"// {uuid.uuid4()}: a source the cache has never seen\n"
    start = time.monotonic()
    judge.run(Program(code, "cpp"), [JudgeTest("1", "3")])
    first = time.monotonic() - start
    start = time.monotonic()
    res = judge.run(Program(code, "cpp"), [JudgeTest("2", "6"), JudgeTest("3", "9")])
    second = time.monotonic() - start
    assert all(r.verdict == Verdict.AC for r in res)
    assert judge.cpp.key(code) and (judge.cpp.cache_dir / judge.cpp.key(code)).exists()
    assert second < first
