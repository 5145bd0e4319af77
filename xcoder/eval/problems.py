"""A small benchmark-agnostic problem record: what eval needs to prompt, grade and break down
scores, whichever benchmark (LiveCodeBench, LeetCodeDataset, HumanEval) the problem came from."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

KINDS = ("stdio", "call", "assert")


@dataclasses.dataclass(frozen=True)
class EvalTest:
    """One test. stdio/call: `input` and the expected `output` (call: one JSON value per input line,
    the expected return value as JSON). assert: `code` runs after the program (asserts)."""

    __test__ = False  # not a pytest class

    input: str = ""
    output: str | None = None
    code: str | None = None


@dataclasses.dataclass
class Problem:
    """One benchmark problem. `kind` decides how it is graded; `fn_name` names the method of
    `class Solution` (or the top-level function) for call-based problems."""

    problem_id: str
    benchmark: str
    title: str
    statement: str
    kind: str
    public_tests: list[EvalTest]
    private_tests: list[EvalTest]
    starter_code: str = ""
    fn_name: str | None = None
    difficulty: str = "unknown"
    platform: str = "unknown"
    contest_date: dt.datetime | None = None
    prelude: str = ""  # code placed before the program (helper classes a benchmark's tests assume)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"problem {self.problem_id}: kind {self.kind!r} not in {KINDS}")
        if self.kind == "call" and not self.fn_name:
            raise ValueError(f"problem {self.problem_id}: call-based problem without fn_name")
        if not self.public_tests and not self.private_tests:
            raise ValueError(f"problem {self.problem_id}: no tests")

    @property
    def tests(self) -> list[EvalTest]:
        """Public then private tests: LCB grades on both, in this order."""
        return list(self.public_tests) + list(self.private_tests)

    def tests_digest(self) -> str:
        """Hash of what grading depends on (tests, kind, fn_name), used to key the grade cache.
        Computed once per problem (LiveCodeBench's private tests run to megabytes per problem,
        and every sample's grade is keyed by it); a problem's tests are not changed after load."""
        cached = self.__dict__.get("_tests_digest")
        if cached is None:
            blob = json.dumps([self.kind, self.fn_name, self.prelude, [dataclasses.astuple(t) for t in self.tests]])
            cached = self.__dict__["_tests_digest"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return cached


def difficulty_mix(problems: Iterable[Problem]) -> dict[str, int]:
    """Counts per difficulty, in easy/medium/hard order first (printed with every score)."""
    counts = Counter(p.difficulty for p in problems)
    order = ["easy", "medium", "hard"]
    return {k: counts[k] for k in order if counts[k]} | {k: v for k, v in sorted(counts.items()) if k not in order}


def check_unique_ids(problems: Sequence[Problem], source: str) -> None:
    seen: set[str] = set()
    for p in problems:
        if p.problem_id in seen:
            raise ValueError(f"{source}: duplicate problem id {p.problem_id!r}")
        seen.add(p.problem_id)
