"""Schema check for feature trees returned by the LLM (extraction and evolution answers).

An answer must be an upstream-layout object: category -> ... -> list of leaf names, nested dicts
for deeper categories. Anything else is a `TreeRejected` with a short reason that the stage counts
(`bad_node`, `too_deep`, `long_name`, `empty_tree`, ...); nothing is repaired into shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from xcoder.synth.features.tree import FeatureTree, clean_name, from_upstream, is_dropped_key, norm_key


class TreeRejected(ValueError):
    """An LLM tree failed the schema; `reason` is the counted drop reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass
class TreeSchema:
    max_depth: int = 6  # category levels + leaf level
    max_name_chars: int = 80
    min_leaves: int = 1
    max_leaves: int = 300
    allowed_roots: Sequence[str] = ()  # empty = any root category

    def validate(self, obj: Any) -> tuple[FeatureTree, int]:
        """The tree (every node freq 1) and the number of root categories dropped as not allowed."""
        if not isinstance(obj, dict):
            raise TreeRejected("not_object", type(obj).__name__)
        self._check(obj, (), 0)
        tree = from_upstream(obj, freq=1)
        dropped_roots = 0
        if self.allowed_roots:
            allowed = {norm_key(r) for r in self.allowed_roots}
            for key in list(tree.roots):
                if key not in allowed:
                    del tree.roots[key]
                    dropped_roots += 1
        leaves = tree.num_leaves()
        if not tree.roots or leaves == 0:
            raise TreeRejected("empty_tree")
        if leaves < self.min_leaves:
            raise TreeRejected("too_few_leaves", str(leaves))
        if leaves > self.max_leaves:
            raise TreeRejected("too_many_leaves", str(leaves))
        return tree, dropped_roots

    def _name(self, name: Any, path: tuple[str, ...]) -> None:
        if not isinstance(name, str) or not clean_name(name):
            raise TreeRejected("bad_name", " > ".join(path) + f" > {name!r}")
        if len(name) > self.max_name_chars:
            raise TreeRejected("long_name", name[:60])

    def _check(self, value: Any, path: tuple[str, ...], depth: int) -> None:
        if depth > self.max_depth:
            raise TreeRejected("too_deep", " > ".join(path))
        if isinstance(value, dict):
            if "feature" in value:  # an annotated leaf {"feature": name, ...}
                self._name(value["feature"], path)
                return
            for key, child in value.items():
                if is_dropped_key(key):
                    continue
                self._name(key, path)
                self._check(child, path + (key,), depth + 1)
            return
        if isinstance(value, list) and path:
            for item in value:
                if isinstance(item, str):
                    self._name(item, path)
                    if depth + 1 > self.max_depth:
                        raise TreeRejected("too_deep", " > ".join(path))
                elif isinstance(item, dict):
                    self._check(item, path, depth)
                else:
                    raise TreeRejected("bad_node", " > ".join(path) + f": list item of type {type(item).__name__}")
            return
        raise TreeRejected("bad_node", " > ".join(path) + f": value of type {type(value).__name__}")
