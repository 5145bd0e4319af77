"""A fresh-process reference judge for cross-checking: one `python3 prog.py` per test, no sandbox,
no warm interpreter, no supervisor. Deliberately naive (what upstream pipelines do), so the
judge's verdicts can be compared with the plainest possible way of running a program."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from xcoder.judge import JudgeTest, Verdict
from xcoder.judge.child import CALL_PRELUDE

_CALL_HARNESS = """
import json as _json, sys as _sys
_args = [_json.loads(line) for line in _sys.stdin.read().splitlines() if line.strip()]
_fn = getattr(Solution(), {fn!r}) if "Solution" in globals() and hasattr(Solution, {fn!r}) else globals()[{fn!r}]
_sys.stdout.write(_json.dumps(_fn(*_args)))
"""


def run_reference(code: str, test: JudgeTest, *, kind: str = "stdio", fn_name: str | None = None,
                  prelude: bool = False, time_s: float = 10.0) -> tuple[Verdict, str]:
    """(verdict, stdout) of `code` on `test` in a fresh interpreter: TLE, RE (non-zero exit),
    else AC/WA against the expected output (stdio: stripped text; call: JSON by value)."""
    source = (CALL_PRELUDE if prelude or kind == "call" else "") + code
    if kind == "call":
        source += _CALL_HARNESS.format(fn=fn_name)
    elif kind != "stdio":
        raise ValueError(f"the reference runs stdio and call kinds, not {kind!r}")
    with tempfile.TemporaryDirectory(prefix="xcoder-reference-") as tmp:
        Path(tmp, "prog.py").write_text(source)
        try:
            proc = subprocess.run([sys.executable, "prog.py"], input=test.input.encode(), capture_output=True,
                                  cwd=tmp, timeout=time_s, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        except subprocess.TimeoutExpired:
            return Verdict.TLE, ""
    stdout = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        return Verdict.RE, stdout
    if test.output is None:
        return Verdict.AC, stdout
    same = json.loads(stdout) == json.loads(test.output) if kind == "call" else stdout.strip() == test.output.strip()
    return (Verdict.AC if same else Verdict.WA), stdout
