"""Validation of the two task-generation LLM outputs and parsing of the statement's samples.

Nothing here repairs an output: a stage-1 analysis without a usable selected tree, or a statement
without its sections, samples or LeetCode signature, is a `ParseFailure` with a reason that the
stage counts (upstream injected stub trees and "longest sentence" questions instead, paper-recipe §12.10).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any

STAGE1_KEYS = ("feature_roles_tree", "selected_features_tree", "integration_strategy")


class ParseFailure(ValueError):
    """An LLM output that does not meet its contract; `reason` is the counted drop reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------- stage 1


def count_selected_leaves(tree: Any) -> int:
    """Leaves of a selected-features tree: dicts carrying a "feature" key (upstream stage-1 layout)."""
    if isinstance(tree, dict):
        if "feature" in tree and isinstance(tree["feature"], str):
            return 1
        return sum(count_selected_leaves(v) for v in tree.values())
    if isinstance(tree, list):
        return sum(count_selected_leaves(v) for v in tree)
    return 0


def selected_leaf_names(tree: Any) -> list[str]:
    if isinstance(tree, dict):
        if "feature" in tree and isinstance(tree["feature"], str):
            return [tree["feature"]]
        return [n for v in tree.values() for n in selected_leaf_names(v)]
    if isinstance(tree, list):
        return [n for v in tree for n in selected_leaf_names(v)]
    return []


def validate_stage1(obj: Any, *, min_selected: int = 1) -> dict[str, Any]:
    """Check the stage-1 JSON: the three keys, a non-empty selected tree, a strategy string."""
    if not isinstance(obj, dict):
        raise ParseFailure("stage1_not_object", type(obj).__name__)
    missing = [k for k in STAGE1_KEYS if k not in obj]
    if missing:
        raise ParseFailure("stage1_missing_keys", ",".join(missing))
    if not isinstance(obj["feature_roles_tree"], dict) or not obj["feature_roles_tree"]:
        raise ParseFailure("stage1_bad_roles_tree")
    selected = obj["selected_features_tree"]
    if not isinstance(selected, dict) or count_selected_leaves(selected) < min_selected:
        raise ParseFailure("stage1_too_few_selected", f"need >= {min_selected} selected leaves")
    strategy = obj["integration_strategy"]
    if not isinstance(strategy, str) or not strategy.strip():
        raise ParseFailure("stage1_no_strategy")
    return {k: obj[k] for k in STAGE1_KEYS}


# ---------------------------------------------------------------- stage 2


@dataclasses.dataclass
class Sample:
    input: str  # stdin text, or one JSON value per line (call-based)
    output: str  # as written in the statement (stdout text, or the JSON of the return value)


@dataclasses.dataclass
class ParsedTask:
    question: str
    samples: list[Sample]
    fn_name: str | None = None
    starter_code: str | None = None
    params: list[str] | None = None


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.S)


def _sections(text: str) -> list[tuple[int, str, str]]:
    """(level, title, body) for every markdown heading, body up to the next heading of any level."""
    heads = list(_HEADING.finditer(text))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.append((len(m.group(1)), m.group(2).strip(), text[m.end() : end]))
    return out


def _block(body: str) -> str | None:
    """The sample text of a section: the first fenced block, else the stripped prose; None if empty."""
    fence = _FENCE.search(body)
    text = fence.group(1) if fence else body
    text = text.strip("\n")
    return text if text.strip() else None


def _norm_title(title: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", title.lower()).strip()


def parse_codeforces(question: str, *, min_samples: int = 2) -> ParsedTask:
    """`# Title`, story, `## Input`, `## Output`, `## Example(s)` with `### Input`/`### Output` pairs."""
    secs = _sections(question)
    if not secs or secs[0][0] != 1:
        raise ParseFailure("missing_section", "# Title")
    titles = {_norm_title(t) for lvl, t, _ in secs if lvl == 2}
    for need in ("input", "output"):
        if need not in titles:
            raise ParseFailure("missing_section", f"## {need.title()}")
    if not titles & {"example", "examples"}:
        raise ParseFailure("missing_section", "## Example")
    samples: list[Sample] = []
    pending: str | None = None
    in_examples = False
    for lvl, title, body in secs:
        t = _norm_title(title)
        if lvl <= 2:
            in_examples = t in ("example", "examples")
            continue
        if not in_examples:
            continue
        if re.fullmatch(r"input( \d+)?", t):
            if pending is not None:
                raise ParseFailure("bad_samples", "### Input without ### Output")
            pending = _block(body)
            if pending is None:
                raise ParseFailure("bad_samples", "empty sample input")
        elif re.fullmatch(r"output( \d+)?", t):
            out = _block(body)
            if pending is None or out is None:
                raise ParseFailure("bad_samples", "### Output without input, or empty")
            samples.append(Sample(pending, out))
            pending = None
    return _check_samples(ParsedTask(question, samples), min_samples)


def parse_atcoder(question: str, *, min_samples: int = 2) -> ParsedTask:
    """`## Input`, `## Output`, `## Constraints`, `## Sample Input k` / `## Sample Output k`."""
    secs = _sections(question)
    titles = {_norm_title(t) for _, t, _ in secs}
    for need in ("input", "output", "constraints"):
        if need not in titles:
            raise ParseFailure("missing_section", f"## {need.title()}")
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for _, title, body in secs:
        m = re.fullmatch(r"sample (input|output) ?(\d*)", _norm_title(title))
        if not m:
            continue
        text = _block(body)
        if text is None:
            raise ParseFailure("bad_samples", f"empty {title}")
        (inputs if m.group(1) == "input" else outputs)[m.group(2) or "1"] = text
    if set(inputs) != set(outputs):
        raise ParseFailure("bad_samples", "sample inputs and outputs do not pair up")
    samples = [Sample(inputs[k], outputs[k]) for k in sorted(inputs, key=lambda k: int(k))]
    return _check_samples(ParsedTask(question, samples), min_samples)


def _check_samples(task: ParsedTask, min_samples: int) -> ParsedTask:
    if len(task.samples) < min_samples:
        raise ParseFailure("too_few_samples", f"{len(task.samples)} < {min_samples}")
    if len({s.input.strip() for s in task.samples}) < len(task.samples):
        raise ParseFailure("bad_samples", "duplicate sample inputs")
    return task


# ---------------------------------------------------------------- LeetCode style


def parse_signature(starter_code: str) -> tuple[str, list[str]]:
    """(method name, parameter names without self) of the single method of `class Solution`."""
    code = starter_code.rstrip()
    if not code:
        raise ParseFailure("no_signature", "empty starter_code")
    try:
        tree = ast.parse(code + ("\n        pass\n" if code.endswith(":") else "\n"))
    except SyntaxError as exc:
        raise ParseFailure("no_signature", f"starter_code does not parse: {exc.msg}") from exc
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Solution"]
    if len(classes) != 1:
        raise ParseFailure("no_signature", "starter_code needs exactly one `class Solution`")
    methods = [n for n in classes[0].body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    if len(methods) != 1:
        raise ParseFailure("no_signature", f"class Solution must have one public method, has {len(methods)}")
    args = methods[0].args
    names = [a.arg for a in args.posonlyargs + args.args]
    if not names or names[0] != "self":
        raise ParseFailure("no_signature", "method must take self first")
    if args.vararg or args.kwarg or not names[1:]:
        raise ParseFailure("no_signature", "method needs named parameters and no *args/**kwargs")
    return methods[0].name, names[1:]


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_LITERAL_WORDS = {"true": "True", "false": "False", "null": "None"}


def parse_literal(text: str) -> Any:
    """A LeetCode-style value (`[1,2]`, `"ab"`, `true`, `null`, `2.5`) as a JSON-able Python value."""
    src = re.sub(r"\b(true|false|null)\b", lambda m: _LITERAL_WORDS[m.group(1)], text.strip())
    try:
        value = ast.literal_eval(src)
    except (ValueError, SyntaxError) as exc:
        raise ParseFailure("bad_samples", f"not a literal: {text[:60]!r}") from exc
    if isinstance(value, tuple):
        value = list(value)
    json.dumps(value)  # must be JSON-able (no sets / complex)
    return value


def leetcode_args_to_lines(assignments: str, params: list[str]) -> str:
    """`nums = [1,2], k = 3` -> one JSON value per line in parameter order (the judge's call format)."""
    values: dict[str, Any] = {}
    for part in _split_top_level(assignments):
        name, eq, value = part.partition("=")
        if not eq:
            raise ParseFailure("bad_samples", f"argument without name: {part[:60]!r}")
        values[name.strip()] = parse_literal(value)
    if list(values) != params and sorted(values) != sorted(params):
        raise ParseFailure("sample_args_mismatch", f"sample names {list(values)} vs signature {params}")
    return "\n".join(json.dumps(values[p]) for p in params)


_LC_EXAMPLE = re.compile(
    r"Example\s*\d*\s*:\s*(?:\n|\s)*Input\s*:\s*(?P<input>.+?)\s*\n\s*Output\s*:\s*(?P<output>.+?)\s*(?:\n|$)",
    re.S,
)


def parse_leetcode(question: str, starter_code: Any, *, min_samples: int = 2) -> ParsedTask:
    """`Example k:` with `Input: a = ..., b = ...` / `Output: ...`, `Constraints:` and a signature."""
    if not isinstance(starter_code, str):
        raise ParseFailure("no_signature", "stage-2 JSON has no starter_code string")
    fn_name, params = parse_signature(starter_code)
    if not re.search(r"^\s*Constraints\s*:", question, re.M):
        raise ParseFailure("missing_section", "Constraints:")
    samples = []
    for m in _LC_EXAMPLE.finditer(question):
        args = leetcode_args_to_lines(m.group("input"), params)
        output = json.dumps(parse_literal(m.group("output")))
        samples.append(Sample(args, output))
    task = ParsedTask(question, samples, fn_name=fn_name, starter_code=starter_code.rstrip() + "\n", params=params)
    return _check_samples(task, min_samples)


def parse_stage2(obj: Any, style: str, *, min_samples: int = 2) -> ParsedTask:
    """Validate a stage-2 JSON object for `style` and parse its samples (raises ParseFailure)."""
    if not isinstance(obj, dict):
        raise ParseFailure("stage2_not_object", type(obj).__name__)
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ParseFailure("stage2_no_question")
    question = question.strip()
    if style == "codeforces":
        return parse_codeforces(question, min_samples=min_samples)
    if style == "atcoder":
        return parse_atcoder(question, min_samples=min_samples)
    if style == "leetcode":
        return parse_leetcode(question, obj.get("starter_code"), min_samples=min_samples)
    raise ValueError(f"unknown style {style!r}")


def samples_of(question: str, style: str, starter_code: str | None, *, min_samples: int = 0) -> list[Sample]:
    """Re-parse the samples of a stored Task (deterministic; the Task parquet keeps the statement)."""
    obj = {"question": question, "starter_code": starter_code}
    return parse_stage2(obj, style, min_samples=min_samples).samples
