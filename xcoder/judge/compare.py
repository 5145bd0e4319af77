"""Named output comparators: each caller picks the convention its numbers must match.

| mode            | rule                                                                 | used by (default) |
|-----------------|----------------------------------------------------------------------|-------------------|
| `exact`         | byte-for-byte string equality                                        | -                 |
| `strip`         | `expected.strip() == actual.strip()` (X-Coder code-judge)            | RL reward, voting |
| `rstrip_newline`| `rstrip("\\n")` equality (verl's sandbox_fusion reward)               | verl parity       |
| `lines`         | strip whole text, split lines, strip each line, equal lists          | -                 |
| `tokens`        | whitespace-separated token lists equal                               | -                 |
| `float`         | tokens; numeric tokens equal within abs/rel tolerance (`float:1e-4`) | -                 |
| `lcb`           | LiveCodeBench `grade_stdio` exactly (see `lcb_equal`)                 | evaluation        |
| `sandboxfusion` | SandboxFusion CommonOJ checker (see `sandboxfusion_equal`)           | SF parity         |

Sources: docs/judge-semantics.md §0, §1, §4, §5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

Comparator = Callable[[str, str], bool]

DEFAULT_FLOAT_TOL = 1e-6


def exact_equal(expected: str, actual: str) -> bool:
    return expected == actual


def strip_equal(expected: str, actual: str) -> bool:
    """X-Coder code-judge: `stdout.strip() == expected.strip()` and nothing else."""
    return expected.strip() == actual.strip()


def rstrip_newline_equal(expected: str, actual: str) -> bool:
    """verl `sandbox_fusion`: `stdout.rstrip("\\n") == expected.rstrip("\\n")`."""
    return expected.rstrip("\n") == actual.rstrip("\n")


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def lines_equal(expected: str, actual: str) -> bool:
    """Per-line strip; whole-text strip first so trailing blank lines do not count."""
    return _stripped_lines(expected) == _stripped_lines(actual)


def tokens_equal(expected: str, actual: str) -> bool:
    return expected.split() == actual.split()


def _float_token_equal(exp: str, act: str, abs_tol: float, rel_tol: float) -> bool:
    if exp == act:
        return True
    try:
        e, a = float(exp), float(act)
    except ValueError:
        return False
    if math.isnan(e) or math.isnan(a):
        return math.isnan(e) and math.isnan(a)
    return math.isclose(e, a, rel_tol=rel_tol, abs_tol=abs_tol)


def float_equal(expected: str, actual: str, abs_tol: float = DEFAULT_FLOAT_TOL,
                rel_tol: float = DEFAULT_FLOAT_TOL) -> bool:
    """Token-wise; numeric tokens pass if within abs OR rel tolerance, others must be equal."""
    exp_tokens, act_tokens = expected.split(), actual.split()
    if len(exp_tokens) != len(act_tokens):
        return False
    return all(_float_token_equal(e, a, abs_tol, rel_tol) for e, a in zip(exp_tokens, act_tokens))


def _lcb_decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except Exception:  # noqa: BLE001 - LCB uses a bare except here
        return None


def lcb_equal(expected: str, actual: str) -> bool:
    """LiveCodeBench `grade_stdio` (lcb_runner/evaluation/testing_util.py @28fef95):
    strip both texts, split on "\\n", strip every line (inner blank lines kept); line counts must
    match; a line passes if the strings are equal, else if both lines convert token-wise to
    `Decimal` and the lists are equal; an unconvertible token fails. Case-sensitive."""
    pred_lines, gt_lines = _stripped_lines(actual), _stripped_lines(expected)
    if len(pred_lines) != len(gt_lines):
        return False
    for pred, gt in zip(pred_lines, gt_lines):
        if pred == gt:
            continue
        pred_dec, gt_dec = _lcb_decimals(pred), _lcb_decimals(gt)
        if pred_dec is None or gt_dec is None or pred_dec != gt_dec:
            return False
    return True


def _sf_is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _sf_float_equal(a: float, b: float, rel_tol: float = 1e-5) -> bool:
    return abs(a - b) / max(abs(b), 1e-10) < rel_tol


def sandboxfusion_equal(expected: str, actual: str) -> bool:
    """SandboxFusion `check_stdio_test_case` (sandbox/datasets/utils, lower_cmp=True): strip and
    split both on "\n"; drop one trailing empty line from the longer side; equal line counts;
    per line lower-case, then `strip()` equality, else both lines parse as floats and
    |a - b| / max(|expected|, 1e-10) < 1e-5."""
    act_lines = actual.strip().split("\n")
    exp_lines = expected.strip().split("\n")
    if len(act_lines) - len(exp_lines) == 1 and act_lines[-1] == "":
        act_lines = act_lines[:-1]
    if len(exp_lines) - len(act_lines) == 1 and exp_lines[-1] == "":
        exp_lines = exp_lines[:-1]
    if len(act_lines) != len(exp_lines):
        return False
    for act, exp in zip(act_lines, exp_lines):
        act, exp = act.lower(), exp.lower()
        if act.strip() != exp.strip():
            if _sf_is_float(exp) and _sf_is_float(act) and _sf_float_equal(float(act), float(exp)):
                continue
            return False
    return True


COMPARATORS: dict[str, Comparator] = {
    "exact": exact_equal,
    "strip": strip_equal,
    "rstrip_newline": rstrip_newline_equal,
    "lines": lines_equal,
    "tokens": tokens_equal,
    "float": float_equal,
    "lcb": lcb_equal,
    "sandboxfusion": sandboxfusion_equal,
}


def get_comparator(mode: str) -> Comparator:
    """`mode` is a name from COMPARATORS, or `float:TOL` (abs and rel tolerance TOL)."""
    if mode.startswith("float:"):
        try:
            tol = float(mode.split(":", 1)[1])
        except ValueError as exc:
            raise ValueError(f"bad float tolerance in compare mode {mode!r} (want e.g. float:1e-4)") from exc
        return lambda expected, actual: float_equal(expected, actual, tol, tol)
    try:
        return COMPARATORS[mode]
    except KeyError:
        raise ValueError(f"unknown compare mode {mode!r}; choose one of {sorted(COMPARATORS)} or float:TOL") from None


def compare(mode: str, expected: str, actual: str) -> bool:
    """Does `actual` match `expected` under comparator `mode`?"""
    return get_comparator(mode)(expected, actual)
