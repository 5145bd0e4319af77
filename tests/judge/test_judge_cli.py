"""`xcoder judge run|bench|serve` command-line contract."""

from __future__ import annotations

import json

from xcoder.judge import Limits, profile_limits
from xcoder.judge.cli import main


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_prints_one_json_object_per_test_in_order(tmp_path, capsys):
    prog = _write(tmp_path, "ab.py", "a, b = map(int, input().split())\nprint(a + b)\n")
    tests = _write(tmp_path, "t.jsonl",
                   '{"input": "1 2\\n", "output": "3"}\n{"input": "2 2\\n", "output": "5"}\n'
                   '{"input": "", "output": null}\n')
    assert main(["run", "--program", str(prog), "--tests", str(tests), "--time-limit", "5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["index"], r["verdict"]) for r in rows] == [(0, "AC"), (1, "WA"), (2, "RE")]
    assert all("time_s" in r for r in rows)


def test_run_call_and_assert_kinds(tmp_path, capsys):
    prog = _write(tmp_path, "s.py", "class Solution:\n    def twice(self, x):\n        return [x, x]\n")
    tests = _write(tmp_path, "t.jsonl", '{"input": "3", "output": "[3, 3]"}\n')
    assert main(["run", "--program", str(prog), "--tests", str(tests), "--kind", "call", "--fn-name", "twice"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "AC"
    tests = _write(tmp_path, "a.jsonl", '{"code": "assert Solution().twice(1) == [1, 1]"}\n')
    assert main(["run", "--program", str(prog), "--tests", str(tests), "--kind", "assert"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "AC"


def test_run_cpp_by_suffix(tmp_path, capsys):
    prog = _write(tmp_path, "p.cpp",
                  "#include <cstdio>\nint main(){int a,b;std::scanf(\"%d %d\",&a,&b);std::printf(\"%d\\n\",a*b);}\n")
    tests = _write(tmp_path, "t.jsonl", '{"input": "6 7", "output": "42"}\n')
    assert main(["run", "--program", str(prog), "--tests", str(tests)]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "AC"


def test_usage_errors_exit_non_zero(tmp_path, capsys):
    prog = _write(tmp_path, "p.py", "print(1)\n")
    bad = _write(tmp_path, "bad.jsonl", "{not json}\n")
    assert main(["run", "--program", str(tmp_path / "missing.py"), "--tests", str(bad)]) == 2
    assert main(["run", "--program", str(prog), "--tests", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    good = _write(tmp_path, "t.jsonl", '{"input": "", "output": "1"}\n')
    assert main(["run", "--program", str(prog), "--tests", str(good), "--kind", "call"]) == 2
    assert main(["run", "--program", str(prog), "--tests", str(good), "--compare", "nope"]) == 2


def test_bench_quick_prints_ratios(capsys):
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "(a) A+B" in out and "(b) CPU-heavy" in out and "(c) 10 MB printer" in out
    assert "(floor) bare fork + exit" in out  # the ceiling of any fork-per-test judge, same run
    for line in out.splitlines():
        if line.startswith("| ("):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[4].endswith("x")  # ratio column
            tests = cells[1]
            if not cells[0].startswith("(floor)"):
                assert cells[5] == f"{tests}/{tests}"  # the judge got every answer right


def test_config_profiles_give_the_documented_limits():
    from xcoder.config import compose

    judge_cfg = compose().judge
    assert profile_limits(judge_cfg, "voting").time_s == 5
    rl = profile_limits(judge_cfg, "rl")
    assert (rl.time_s, rl.memory_mb) == (10, 256)
    assert profile_limits(judge_cfg, "eval").time_s == 6
    assert isinstance(rl, Limits) and rl.output_bytes == judge_cfg.output_limit_bytes
