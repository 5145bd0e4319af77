"""Structured output: pull the last JSON object out of a model's answer, optionally check a schema.

Failures return a reason instead of a guess, so callers drop and count them (never invent data):
`no_json` (no object-looking text at all), `invalid_json` (something that should be JSON but does
not parse), `schema_mismatch` (parsed, but not the shape asked for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\n(.*?)```", re.DOTALL)


_TOKENS = re.compile(r'[{}"\\]')


def _matching_brace(text: str, start: int) -> int:
    """Index just past the '}' closing the '{' at `start` (JSON-string aware), or -1 if unclosed."""
    depth = 0
    in_string = False
    escaped_until = -1
    for match in _TOKENS.finditer(text, start):
        i = match.start()
        if i < escaped_until:
            continue
        ch = match.group()
        if ch == "\\":
            escaped_until = i + 2
        elif ch == '"':
            in_string = not in_string
        elif not in_string:
            depth += 1 if ch == "{" else -1
            if depth == 0:
                return i + 1
    return -1


def _last_object(text: str) -> tuple[dict | None, bool]:
    """(last top-level JSON object in text, whether any '{' was seen).

    Top-level means a balanced `{...}` region not inside another one; regions that do not parse are
    skipped whole (an inner object of a broken outer one is never returned in its place), and an
    unclosed region (truncated output) makes the answer None.
    """
    last: dict | None = None
    pos = text.find("{")
    seen = pos >= 0
    while pos >= 0:
        end = _matching_brace(text, pos)
        if end < 0:  # unclosed: the last object is truncated
            return None, seen
        try:
            obj = json.loads(text[pos:end])
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            last = obj
        pos = text.find("{", end)
    return last, seen


def extract_json(text: str | None, schema: Mapping[str, Any] | None = None) -> tuple[Any, str | None]:
    """Last JSON object in `text` (a fenced ```json block wins over bare text); (obj, None) on success.

    With `schema` (a JSON Schema dict) the object must validate, else (None, "schema_mismatch").
    """
    if not text:
        return None, "no_json"
    obj = None
    seen = False
    for block in reversed(_FENCE.findall(text)):
        if "{" in block:
            seen = True
            obj, _ = _last_object(block)
            if obj is not None:
                break
    if obj is None:
        obj, seen_bare = _last_object(text)
        seen = seen or seen_bare
    if obj is None:
        return None, ("invalid_json" if seen else "no_json")
    if schema is not None and schema_errors(obj, schema):
        return None, "schema_mismatch"
    return obj, None


def schema_errors(obj: Any, schema: Mapping[str, Any]) -> list[str]:
    """Human-readable JSON-Schema violations of `obj` (empty list = valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
