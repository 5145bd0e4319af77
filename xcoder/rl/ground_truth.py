"""Decode `RLRow.reward_model.ground_truth` into judge tests, and pick the graded subset.

Two encodings are accepted, so one parquet serves both our reward and verl's stock
`sandbox_fusion` path:
- ours (records.py): `{"kind": "stdio"|"call"|"assert", "fn_name": str|null,
  "tests": [{"input", "output", "weight"?}] | [{"code"}], "compare"?: judge comparator}` (synth
  export sets `compare` to the vote's normalisation; absent = `rl.reward.compare`);
- verl / APPS style: `{"inputs": [...], "outputs": [...], "fn_name"?}` or `{"assert_case": [...]}`.
  Call-based inputs may be argument lists (encoded one JSON value per line, the judge's `call`
  convention) and outputs any JSON value.

Test subsets are deterministic per (task, epoch): every rollout of a prompt faces the same tests
(upstream sampled per rollout, unseeded: paper-recipe §12.3).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from typing import Any

from xcoder.judge import JudgeTest


class GroundTruthError(ValueError):
    """The ground truth of a row cannot be turned into tests (a data bug, never the model's fault)."""


@dataclasses.dataclass(frozen=True)
class TestSuite:
    __test__ = False  # not a pytest class

    kind: str  # stdio | call | assert
    fn_name: str | None
    tests: tuple[JudgeTest, ...]
    compare: str | None = None  # comparator the labels were made for (synth export); None = the reward's default


def _loads_deep(value: Any, what: str) -> Any:
    """json.loads until the value is no longer a JSON string (released data is multiply encoded)."""
    for _ in range(8):
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text or text[0] not in "{[\"":
            return value
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GroundTruthError(f"{what}: invalid JSON ({exc.msg} at char {exc.pos})") from exc
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _call_input(value: Any) -> str:
    """Call-based input: a string is already one JSON value per line; a list is the argument list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(json.dumps(arg) for arg in value)
    return json.dumps(value)


def parse_ground_truth(ground_truth: Any) -> TestSuite:
    """Decode either encoding into a `TestSuite`; raise `GroundTruthError` naming the problem."""
    data = _loads_deep(ground_truth, "ground_truth")
    if not isinstance(data, dict):
        raise GroundTruthError(f"ground_truth must be a JSON object, got {type(data).__name__}")
    compare = None
    if "tests" in data:
        kind = str(data.get("kind") or "stdio")
        fn_name = data.get("fn_name") or None
        compare = data.get("compare") or None
        if compare is not None:
            from xcoder.judge.compare import get_comparator

            try:
                get_comparator(str(compare))
            except ValueError as exc:
                raise GroundTruthError(f"ground_truth.compare: {exc}") from exc
            compare = str(compare)
        raw = data["tests"]
        if not isinstance(raw, list):
            raise GroundTruthError("ground_truth.tests must be a list")
        tests = []
        for i, t in enumerate(raw):
            if not isinstance(t, dict):
                raise GroundTruthError(f"ground_truth.tests[{i}] must be an object")
            if kind == "assert":
                if not t.get("code"):
                    raise GroundTruthError(f"ground_truth.tests[{i}]: assert test without 'code'")
                tests.append(JudgeTest(code=str(t["code"])))
            else:
                out = t.get("output")
                tests.append(JudgeTest(input=str(t.get("input") or ""), output=None if out is None else str(out)))
    elif "assert_case" in data:
        kind, fn_name = "assert", None
        tests = [JudgeTest(code=str(c)) for c in _loads_deep(data["assert_case"], "assert_case")]
    elif "inputs" in data:
        fn_name = data.get("fn_name") or None
        kind = "call" if fn_name else "stdio"
        inputs, outputs = data["inputs"], data.get("outputs")
        if outputs is None or len(inputs) != len(outputs):
            got = "missing" if outputs is None else len(outputs)
            raise GroundTruthError(f"ground_truth: {len(inputs)} inputs but outputs {got}")
        if kind == "call":
            tests = [JudgeTest(input=_call_input(i), output=_as_text(o)) for i, o in zip(inputs, outputs)]
        else:
            tests = [JudgeTest(input=_as_text(i), output=_as_text(o)) for i, o in zip(inputs, outputs)]
    else:
        raise GroundTruthError(f"ground_truth has none of 'tests', 'inputs', 'assert_case' (keys: {sorted(data)})")
    if kind not in ("stdio", "call", "assert"):
        raise GroundTruthError(f"ground_truth.kind {kind!r} is not stdio|call|assert")
    if kind == "call" and not fn_name:
        raise GroundTruthError("ground_truth: kind 'call' needs fn_name")
    if not tests:
        raise GroundTruthError("ground_truth has no tests")
    return TestSuite(kind, fn_name, tuple(tests), compare)


def task_key(ground_truth: Any, extra_info: dict[str, Any] | None) -> str:
    """Stable identity of a task: its task_id when known, else a hash of its ground truth
    (identical for all rollouts of one prompt either way)."""
    if extra_info:
        for key in ("task_id", "id"):
            if extra_info.get(key) not in (None, ""):
                return str(extra_info[key])
    text = ground_truth if isinstance(ground_truth, str) else json.dumps(ground_truth, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def select_tests(n_tests: int, k: int, key: str, epoch: int, seed: int) -> list[int]:
    """Indices (sorted) of at most k tests, deterministic in (task key, epoch, seed)."""
    if k <= 0 or n_tests <= k:
        return list(range(n_tests))
    digest = hashlib.sha256(f"{seed}|{key}|{epoch}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return sorted(rng.sample(range(n_tests), k))
