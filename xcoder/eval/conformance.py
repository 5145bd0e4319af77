"""Runs the shipped LiveCodeBench conformance cases (`eval/data/lcb_conformance.jsonl`) through our
grading path and checks each against LCB's expected result list (or our documented deliberate
difference). `python -m xcoder.eval.conformance` prints one line per case."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xcoder.config import REPO_ROOT
from xcoder.eval.grading import GradingConfig, grade_programs
from xcoder.eval.problems import EvalTest, Problem

CASES_PATH = REPO_ROOT / "eval" / "data" / "lcb_conformance.jsonl"


def load_cases(path: Path = CASES_PATH) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_cases(judge: Any, cases: Sequence[dict[str, Any]], base: GradingConfig | None = None) -> list[dict[str, Any]]:
    """Grade every case (grouped by its limits); returns {id, got, want, ok} per case."""
    base = base or GradingConfig()
    out = []
    for case in cases:
        grading = GradingConfig(time_s=case.get("time_s") or base.time_s,
                                memory_mb=case.get("memory_mb") or base.memory_mb,
                                compare="lcb", stop_on_first_failure=True, lcb_prelude=True)
        problem = Problem(case["id"], "conformance", case["id"], "", case["kind"],
                          [EvalTest(t["input"], t["output"]) for t in case["tests"]], [], fn_name=case["fn_name"])
        grade = grade_programs(judge, [(problem, 0, case["code"])], grading)[0]
        want = case["ours"] if case.get("ours") is not None else case["lcb"]
        out.append({"id": case["id"], "got": grade.results, "want": want, "lcb": case["lcb"],
                    "ok": grade.results == want, "message": grade.message})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.eval.conformance", description=__doc__)
    parser.add_argument("--cases", default=str(CASES_PATH))
    args = parser.parse_args(argv)
    from xcoder.judge import Judge

    with Judge() as judge:
        rows = run_cases(judge, load_cases(Path(args.cases)))
    for r in rows:
        note = "" if r["want"] == r["lcb"] else f"  (LCB: {r['lcb']}, deliberate difference)"
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['id']:<28} got {r['got']} want {r['want']}{note}")
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(bad)}/{len(rows)} cases agree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
