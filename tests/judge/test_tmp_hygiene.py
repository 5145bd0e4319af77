"""Nothing a judge process creates outlives it in the temp dir (issue 16: every judge process
used to leave one `xcoder-seccomp-*.bpf` in /tmp)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xcoder.judge import Judge, JudgeTest, Program


def _entries(path: Path) -> set[str]:
    return set(os.listdir(path))


def test_judge_bench_leaves_nothing_in_tmp(tmp_path):
    """`xcoder judge bench` in a fresh process: its private TMPDIR is empty afterwards, and no new
    `xcoder-*` entry appeared in /tmp (code that ignores TMPDIR would write there)."""
    private = tmp_path / "tmp"
    private.mkdir()
    before = {n for n in _entries(Path("/tmp")) if n.startswith("xcoder-")}
    env = dict(os.environ, TMPDIR=str(private))
    proc = subprocess.run([sys.executable, "-m", "xcoder.cli", "judge", "bench", "--quick"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(a) A+B" in proc.stdout
    assert _entries(private) == set()
    after = {n for n in _entries(Path("/tmp")) if n.startswith("xcoder-")}
    assert after - before == set(), after - before


def test_a_judge_with_cpp_leaves_nothing_in_tmp(tmp_path, monkeypatch):
    """Start, judge Python and C++ (compiled in a sandbox), close: the temp dir is as it was."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    cpp = '#include <cstdio>\nint main() { int a, b; scanf("%d %d", &a, &b); printf("%d\\n", a + b); }\n'
    with Judge(workers=1, cpp_cache_dir=tmp_path / "cpp") as judge:
        (py,) = judge.run(Program("print(sum(map(int, input().split())))"), [JudgeTest("1 2\n", "3")])
        (cc,) = judge.run(Program(cpp, "cpp"), [JudgeTest("1 2\n", "3")])
    assert py.passed and cc.passed, (py, cc)
    assert _entries(private) == set()
