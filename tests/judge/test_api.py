"""The contract API: kinds, verdicts, order, CE, limits (briefs/contracts.md)."""

from __future__ import annotations

import json

import pytest

from xcoder.judge import Judge, JudgeJob, JudgeTest, Limits, Program, Verdict, judge_from_config

from .reference import run_reference

APLUSB = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_stdio_ac_wa_and_no_expected_output(judge):
    res = judge.run(Program(APLUSB), [JudgeTest("1 2\n", "3"), JudgeTest("2 2\n", "5"), JudgeTest("4 5\n", None)])
    assert [r.verdict for r in res] == [Verdict.AC, Verdict.WA, Verdict.AC]
    assert [r.index for r in res] == [0, 1, 2]
    assert res[2].stdout == "9\n"
    assert all(r.time_s > 0 for r in res)


def test_eof_is_runtime_error_like_python(judge):
    (res,) = judge.run(Program(APLUSB), [JudgeTest("", None)])
    assert res.verdict == Verdict.RE and res.exit_code == 1
    assert "EOFError" in res.stderr


def test_call_kind_solution_method_and_top_level_function(judge):
    prog = Program("class Solution:\n    def f(self, a: List[int], b):\n        return (sum(a), b)\n")
    res = judge.run(prog, [JudgeTest("[1,2]\n3", "[3, 3]"), JudgeTest("[1]\n3", "[2, 3]")], kind="call", fn_name="f")
    assert [r.verdict for r in res] == [Verdict.AC, Verdict.WA]
    assert res[0].stdout == "[3, 3]"
    res = judge.run(Program("def g(x):\n    print('noise')\n    return x * 2\n"), [JudgeTest("21", "42")], kind="call",
                    fn_name="g")
    assert res[0].verdict == Verdict.AC and res[0].stdout == "42"


def test_call_kind_exception_is_runtime_error_not_pass(judge):
    prog = Program("def g(x):\n    raise ValueError('boom')\n")
    (res,) = judge.run(prog, [JudgeTest("1", None)], kind="call", fn_name="g")
    assert res.verdict == Verdict.RE


def test_assert_kind(judge):
    prog = Program("def f(x):\n    return x + 1\n")
    res = judge.run(prog, [JudgeTest(code="assert f(1) == 2"), JudgeTest(code="assert f(1) == 3")], kind="assert")
    assert [r.verdict for r in res] == [Verdict.AC, Verdict.RE]
    assert "AssertionError" in res[1].stderr


def test_python_syntax_error_is_compile_error(judge):
    res = judge.run(Program("def f(:\n"), [JudgeTest("", "1"), JudgeTest("", "2")])
    assert [r.verdict for r in res] == [Verdict.CE, Verdict.CE]
    assert "SyntaxError" in res[0].message


def test_cpp_ac_and_compile_error(judge):
    cpp = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<std::endl;}\n"
    res = judge.run(Program(cpp, "cpp"), [JudgeTest("1 2\n", "3"), JudgeTest("2 2\n", "5")])
    assert [r.verdict for r in res] == [Verdict.AC, Verdict.WA]
    (ce,) = judge.run(Program("int main(){return x;}", "cpp"), [JudgeTest("", "")])
    assert ce.verdict == Verdict.CE and "not declared" in ce.message


def test_time_limit(judge):
    (res,) = judge.run(Program("while True:\n    pass\n"), [JudgeTest("", "")], limits=Limits(time_s=1))
    assert res.verdict == Verdict.TLE
    assert res.time_s < 3


def test_stop_on_first_failure_returns_prefix(judge):
    tests = [JudgeTest("1 1\n", "2"), JudgeTest("1 1\n", "3"), JudgeTest("1 1\n", "2")]
    res = judge.run(Program(APLUSB), tests, stop_on_first_failure=True)
    assert [r.verdict for r in res] == [Verdict.AC, Verdict.WA]


def test_run_many_keeps_job_and_test_order(judge):
    jobs = [
        JudgeJob(Program(APLUSB), [JudgeTest(f"{i} {j}\n", str(i + j + (j % 2))) for j in range(3)])
        for i in range(4)
    ]
    batches = judge.run_many(jobs)
    assert len(batches) == 4
    for batch in batches:
        assert [r.index for r in batch] == [0, 1, 2]
        assert [r.verdict for r in batch] == [Verdict.AC, Verdict.WA, Verdict.AC]


def test_prelude_binds_lcb_imports_for_stdio(judge, tmp_path):
    """`prelude=True` gives a stdio program LiveCodeBench's import block (eval grading relies on
    it); without it the same program fails like under `python3 prog.py`. Same in the fresh-process
    reference."""
    code = "q = deque(map(int, input().split()))\nq.rotate(1)\nprint(*q, gcd(12, 18), inf > 1)\n"
    test = [JudgeTest("1 2 3\n", "3 1 2 6 True")]
    (with_prelude,) = judge.run(Program(code), test, prelude=True)
    (without,) = judge.run(Program(code), test)
    assert with_prelude.verdict == Verdict.AC, with_prelude
    assert without.verdict == Verdict.RE and "NameError" in without.stderr
    assert run_reference(code, test[0], prelude=True)[0] == Verdict.AC
    assert run_reference(code, test[0])[0] == Verdict.RE


def test_program_environment_is_the_sandbox_environment(judge):
    """Programs see exactly `sandbox_env()`: nothing of the host's, nor the supervisor's own
    LD_BIND_NOW (it binds symbols once before the first fork, then is dropped)."""
    from xcoder.judge.isolation import sandbox_env

    code = "import os, json\nprint(json.dumps([dict(os.environ), os.getcwd()]))\n"
    (res,) = judge.run(Program(code), [JudgeTest("", None)])
    assert res.verdict == Verdict.AC, res
    env, cwd = json.loads(res.stdout)
    assert env.pop("PWD") == cwd  # as a shell sets it
    assert env == sandbox_env()


def test_the_supervisor_modules_are_invisible_to_programs(judge):
    """The supervisor's Python runs as real modules in the sandbox, yet a program sees what
    `python3 prog.py` sees there: no `xcoder` package."""
    code = "import sys\nprint(sorted(n for n in sys.modules if n.split('.')[0] == 'xcoder'))\nimport xcoder\n"
    (res,) = judge.run(Program(code), [JudgeTest("", None)])
    assert res.verdict == Verdict.RE and res.stdout == "[]\n", res
    assert "ModuleNotFoundError: No module named 'xcoder'" in res.stderr


def test_bad_requests_are_errors(judge):
    with pytest.raises(ValueError, match="fn_name"):
        judge.run(Program("x=1"), [JudgeTest("1")], kind="call")
    with pytest.raises(ValueError, match="compare mode"):
        judge.run(Program("x=1"), [JudgeTest("1")], compare="nope")
    with pytest.raises(ValueError, match="language"):
        judge.run(Program("x=1", "rust"), [JudgeTest("1")])


def test_from_config_uses_the_judge_group():
    from xcoder.config import compose

    cfg = compose()
    with judge_from_config(cfg, mode="local") as j:
        assert j.workers >= 1
        assert j.isolation in ("bwrap", "none")


CROSS_CHECK = [  # (code, test, kind, fn_name): each judged by the judge and by the fresh-process reference
    (APLUSB, JudgeTest("1 2\n", "3"), "stdio", None),
    (APLUSB, JudgeTest("2 2\n", "5"), "stdio", None),
    (APLUSB, JudgeTest("", None), "stdio", None),
    ("import sys\nsys.exit(3)\n", JudgeTest("", None), "stdio", None),
    ("print(sum(range(10**5)))\n", JudgeTest("", str(sum(range(10**5)))), "stdio", None),
    ("import time\ntime.sleep(5)\n", JudgeTest("", None), "stdio", None),
    ("def f(x):\n    return [x]\n", JudgeTest("7", "[7]"), "call", "f"),
    ("def f(x):\n    return [x]\n", JudgeTest("7", "[8]"), "call", "f"),
    ("class Solution:\n    def g(self, a: List[int]) -> int:\n        return max(a)\n", JudgeTest("[1, 5, 2]", "5"),
     "call", "g"),
    ("def f(x):\n    return 1 // x\n", JudgeTest("0", "0"), "call", "f"),
]


@pytest.mark.parametrize("case", range(len(CROSS_CHECK)))
def test_verdicts_match_the_fresh_process_reference(judge, case):
    """The warm, sandboxed, forked path and a plain `python3 prog.py` per test agree."""
    code, test, kind, fn_name = CROSS_CHECK[case]
    limits = Limits(time_s=2)
    (res,) = judge.run(Program(code), [test], kind=kind, fn_name=fn_name, limits=limits)
    verdict, stdout = run_reference(code, test, kind=kind, fn_name=fn_name, time_s=limits.time_s)
    assert res.verdict == verdict, (res, stdout)
    if verdict == Verdict.AC:
        assert res.stdout.strip() == stdout.strip()


def test_isolation_none_is_explicit_and_still_judges(tmp_path):
    with Judge(workers=1, isolation="none", cpp_cache_dir=tmp_path) as unsafe:
        assert unsafe.isolation == "none"
        (res,) = unsafe.run(Program(APLUSB), [JudgeTest("1 2\n", "3")])
    assert res.verdict == Verdict.AC
    with pytest.raises(Exception, match="unknown judge isolation"):
        Judge(workers=1, isolation="weak")


def test_fails_closed_without_bubblewrap(monkeypatch):
    from xcoder.judge import isolation

    broken = isolation.HostSupport(bwrap=None, bwrap_error="bwrap not on PATH", is_root=True, cgroup_memory=None,
                                   cgroup_pids=None)
    monkeypatch.setattr(isolation, "detect_host", lambda: broken)
    with pytest.raises(isolation.IsolationError, match="isolation=none"):
        Judge(workers=1, isolation="auto")
    assert "bwrap=no (bwrap not on PATH)" in broken.describe()
