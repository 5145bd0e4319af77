"""Parsing of the test-input LLM outputs: prompted inputs (JSON), generator and validator programs.

A generator program reads one line `<seed> <scale>` from stdin (scale = small | edge | stress) and
prints exactly one test input; a validator reads one test input from stdin and exits 0 iff it
satisfies the statement's constraints. Both run in the judge, never on the host.
"""

from __future__ import annotations

import json
from typing import Any

from xcoder.records import TEST_TAGS
from xcoder.synth.solutions.parse import final_code
from xcoder.synth.tasks.parse import ParseFailure

SCALES = ("small", "edge", "stress")


def call_args_to_lines(args: Any, params: list[str]) -> str:
    """A `{"param": value}` object (or a list in parameter order) -> one JSON value per line."""
    if isinstance(args, dict):
        if sorted(args) != sorted(params):
            raise ParseFailure("bad_input_args", f"args {sorted(args)} vs signature {params}")
        values = [args[p] for p in params]
    elif isinstance(args, list) and len(args) == len(params):
        values = args
    else:
        raise ParseFailure("bad_input_args", "args must be an object keyed by parameter name")
    return "\n".join(json.dumps(v) for v in values)


def check_call_input(text: str, params: list[str]) -> str:
    """A generated call-based input must be len(params) lines of JSON (normalised to compact JSON)."""
    lines = [ln for ln in text.strip().split("\n") if ln.strip()]
    if len(lines) != len(params):
        raise ParseFailure("bad_generated_input", f"{len(lines)} lines for {len(params)} parameters")
    try:
        return "\n".join(json.dumps(json.loads(ln)) for ln in lines)
    except json.JSONDecodeError as exc:
        raise ParseFailure("bad_generated_input", f"not JSON: {exc}") from exc


def parse_prompted_inputs(
    obj: Any, *, params: list[str] | None, max_inputs: int
) -> tuple[list[tuple[str, str]], int]:
    """`{"inputs": [{"input": "...", "tag": "edge"}, ...]}` (stdio) or `{"args": {...}}` items (call)
    -> ([(input_text, tag)], number of malformed items). Malformed items are counted by the caller;
    an answer with no usable item at all is a ParseFailure."""
    if not isinstance(obj, dict) or not isinstance(obj.get("inputs"), list):
        raise ParseFailure("inputs_not_list", "expected {\"inputs\": [...]}")
    out: list[tuple[str, str]] = []
    bad = 0
    for item in obj["inputs"][:max_inputs]:
        try:
            if not isinstance(item, dict):
                raise ParseFailure("bad_input_item")
            tag = item.get("tag", "plain")
            if tag not in TEST_TAGS:
                tag = "plain"
            if params is not None:
                text = call_args_to_lines(item.get("args"), params)
            else:
                text = item.get("input")
                if not isinstance(text, str) or not text.strip():
                    raise ParseFailure("bad_input_item", "no input string")
                text = text.strip("\n") + "\n"
            out.append((text, tag))
        except ParseFailure:
            bad += 1
    if not out:
        raise ParseFailure("no_usable_inputs", f"{bad} malformed items")
    return out, bad


def parse_program(text: str, what: str) -> str:
    """The final python block of a generator/validator answer (reason names which one failed)."""
    try:
        return final_code(text)
    except ParseFailure as exc:
        raise ParseFailure(f"{what}_{exc.reason}", exc.detail) from exc
