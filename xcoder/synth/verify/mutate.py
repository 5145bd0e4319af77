"""Systematic wrong variants of a correct program (single-site AST mutations).

Used by the labelling-accuracy experiment to build candidate pools with known error rates:
operator flips, off-by-one constants and bounds, wrong base-case returns, min/max and and/or swaps.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator

_CMP_FLIPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
_BIN_FLIPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv}
_CALL_SWAPS = {"min": "max", "max": "min"}


def _sites(tree: ast.AST) -> list[tuple[str, int]]:
    sites = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _CMP_FLIPS:
            sites.append(("operator_flip", i))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN_FLIPS:
            sites.append(("operator_flip", i))
        elif isinstance(node, ast.BoolOp):
            sites.append(("and_or_swap", i))
        elif isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) <= 10:
            sites.append(("off_by_one", i))
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and isinstance(node.value.value,
                                                                                                  (int, bool)):
            sites.append(("wrong_base_case", i))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALL_SWAPS:
            sites.append(("min_max_swap", i))
    return sites


def _apply(tree: ast.AST, kind: str, index: int) -> ast.AST:
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[index]
    if kind == "operator_flip" and isinstance(node, ast.Compare):
        node.ops[0] = _CMP_FLIPS[type(node.ops[0])]()
    elif kind == "operator_flip" and isinstance(node, ast.BinOp):
        node.op = _BIN_FLIPS[type(node.op)]()
    elif kind == "and_or_swap" and isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "off_by_one" and isinstance(node, ast.Constant):
        node.value = node.value + 1
    elif kind == "wrong_base_case" and isinstance(node, ast.Return):
        v = node.value.value  # type: ignore[union-attr]
        node.value = ast.Constant(value=(not v) if isinstance(v, bool) else v + 1)
    elif kind == "min_max_swap" and isinstance(node, ast.Call):
        node.func = ast.Name(id=_CALL_SWAPS[node.func.id], ctx=ast.Load())  # type: ignore[union-attr]
    return ast.fix_missing_locations(tree)


def mutants(code: str) -> Iterator[tuple[str, str]]:
    """(kind, mutated source) for every single mutation site, in source order; identical outputs skipped."""
    tree = ast.parse(code)
    base = ast.unparse(tree)
    seen = {base}
    for kind, index in _sites(tree):
        src = ast.unparse(_apply(tree, kind, index))
        if src not in seen:
            seen.add(src)
            yield kind, src
