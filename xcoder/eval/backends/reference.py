"""A "perfect" generator: answers every problem with its known-good reference solution, fenced as a
model would. Checks the load -> prompt -> extract -> grade -> score path on a benchmark (a correct
pipeline scores 100%) without any model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from xcoder.eval.generation import GenRequest, Sample, SamplingConfig


class ReferenceBackend:
    name = "reference"

    def __init__(self, solutions: dict[str, str], source: str = ""):
        self.solutions = solutions
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> ReferenceBackend:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"eval.reference.solutions_path: {path} not found")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path}: expected a JSON object problem_id -> solution code")
        return cls(data, str(path))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "solutions": self.source}

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> Iterator[list[Sample]]:
        missing = [r.problem_id for r in requests if r.problem_id not in self.solutions]
        if missing:
            raise KeyError(f"reference backend: no solution for {missing[:5]} in {self.source or 'the given map'}")
        for r in requests:
            text = f"<think>reference</think>Here is the solution.\n```python\n{self.solutions[r.problem_id]}\n```\n"
            yield [Sample(r.problem_id, r.first_index + j, text, "stop") for j in range(r.count)]

    def close(self) -> None:
        pass
