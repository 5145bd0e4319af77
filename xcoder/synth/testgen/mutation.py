"""Type-aware mutation of call-based test inputs (EvalPlus's input strengthening, no model needed).

A call-based input is one JSON value per argument line. Mutating a seed input value by value
(ints and floats nudged to neighbours and boundaries, strings edited by one character, lists
shortened, grown, reordered or mutated in one element) produces inputs near the ones the LLM
wrote, of the same types and shapes, which separate candidates that agree on the seeds only.
Mutants are deterministic (seeded), deduplicated against the seeds and each other, and carry no
expected output: dual verification labels them like any other input.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

MAX_INPUT_BYTES = 4096  # mutants stay small: they probe behaviour, stress tests probe speed


def _mutate_value(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value - 1, -value, 0, value * 2, value // 2 if value else 1])
    if isinstance(value, float):
        return rng.choice([value + 1.0, value - 1.0, -value, 0.0, value * 2, value / 2, round(value, 1)])
    if isinstance(value, str):
        return _mutate_string(value, rng)
    if isinstance(value, list):
        return _mutate_list(value, rng, depth)
    if isinstance(value, dict) and value:
        key = rng.choice(sorted(value))
        out = dict(value)
        out[key] = _mutate_value(value[key], rng, depth + 1)
        return out
    return value


def _mutate_string(text: str, rng: random.Random) -> str:
    alphabet = "".join(sorted(set(text))) or "ab"
    if not text:
        return rng.choice(alphabet)
    i = rng.randrange(len(text))
    op = rng.choice(["delete", "insert", "replace", "swap", "duplicate"])
    if op == "delete":
        return text[:i] + text[i + 1:]
    if op == "insert":
        return text[:i] + rng.choice(alphabet) + text[i:]
    if op == "replace":
        return text[:i] + rng.choice(alphabet) + text[i + 1:]
    if op == "swap" and len(text) > 1:
        j = rng.randrange(len(text))
        chars = list(text)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    return text + text[i]


def _mutate_list(items: list[Any], rng: random.Random, depth: int) -> list[Any]:
    if not items:
        return items
    out = list(items)
    op = rng.choice(["drop", "duplicate", "shuffle", "element", "element", "reverse", "empty" if depth else "element"])
    i = rng.randrange(len(out))
    if op == "drop":
        del out[i]
    elif op == "duplicate":
        out.insert(i, out[i])
    elif op == "shuffle":
        rng.shuffle(out)
    elif op == "reverse":
        out.reverse()
    elif op == "empty":
        out = []
    else:
        out[i] = _mutate_value(out[i], rng, depth + 1)
    return out


def mutate_call_inputs(seeds: Iterable[str], count: int, *, seed: int | str = 0,
                       max_rounds: int = 20) -> list[str]:
    """Up to `count` new call-based inputs (JSON value per line) mutated from `seeds`.

    Each mutant changes one argument of one seed (occasionally two), so it stays close to a valid
    input; results are unique, differ from every seed, and are reproducible for a given `seed`."""
    parsed = []
    for text in seeds:
        try:
            parsed.append([json.loads(line) for line in text.split("\n") if line.strip()])
        except (json.JSONDecodeError, ValueError):
            continue
    parsed = [args for args in parsed if args]
    if not parsed or count <= 0:
        return []
    rng = random.Random(f"mutate:{seed}")
    seen = {"\n".join(json.dumps(a) for a in args) for args in parsed}
    out: list[str] = []
    for _ in range(max_rounds * count):
        if len(out) >= count:
            break
        args = list(rng.choice(parsed))
        for _ in range(1 if rng.random() < 0.8 or len(args) == 1 else 2):
            k = rng.randrange(len(args))
            args[k] = _mutate_value(args[k], rng)
        try:
            text = "\n".join(json.dumps(a, allow_nan=False) for a in args)
        except (TypeError, ValueError):
            continue
        if text in seen or len(text) > MAX_INPUT_BYTES:
            continue
        seen.add(text)
        out.append(text)
    return out
