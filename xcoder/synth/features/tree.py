"""The feature tree: named nodes with frequencies, and its two JSON forms.

Upstream (`feature_all.jsonl`) writes a tree as nested dicts, category -> subcategory -> ... ->
`list[str]` of leaves, with no frequencies. Extraction, merge, evolution and frequency-weighted
sampling need a count per node, so in memory and on disk a tree is a `Node` hierarchy
(`{"name": {"freq": n, "children": {...}}}` in JSON, the *frequency form*); `to_upstream` /
`from_upstream` convert to and from the upstream layout, and `upstream_leaf_count` counts leaves
exactly as upstream does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TREE_FORMAT = "xcoder-feature-tree/1"

# Upstream deletes these keys before counting leaves and before sampling [paper-recipe §2, C].
DROPPED_KEYS = frozenset({"programming language"})

_WS = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n\r.,;:!?*`\"'"


class TreeError(ValueError):
    """A feature tree (file or LLM answer) does not have the expected shape."""


def clean_name(name: str) -> str:
    """Display form of a feature name: whitespace collapsed, `_` as space, edge punctuation removed."""
    text = _WS.sub(" ", str(name).replace("_", " ")).strip(_EDGE_PUNCT)
    return text


def norm_key(name: str) -> str:
    """Matching key of a feature name, so "Data_Structures" and "data structure" merge.

    Case-folded display form with the last word singularised (a cheap plural fold: the key is only
    used for matching, the node keeps a readable display name).
    """
    key = clean_name(name).casefold()
    words = key.split(" ")
    last = words[-1]
    if len(last) > 4 and last.endswith("ies"):
        last = last[:-3] + "y"
    elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
        last = last[:-1]
    words[-1] = last
    return " ".join(words)


def is_dropped_key(name: str) -> bool:
    if "rogramming" not in name.lower():  # fast path: called for every key
        return False
    return clean_name(name).casefold() in DROPPED_KEYS


@dataclasses.dataclass
class Node:
    """One feature: display name, frequency (snippets / weight it stands for) and children by key."""

    name: str
    freq: int = 1
    children: dict[str, Node] = dataclasses.field(default_factory=dict)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def child(self, name: str) -> Node | None:
        return self.children.get(norm_key(name))

    def add_child(self, node: Node, accumulate: bool = True) -> Node:
        """Insert `node` (or merge it into the existing child with the same key) and return the child.

        Merging adds frequencies (`accumulate`, trees of different snippets) or keeps the larger one
        (the same feature listed twice within one snippet counts once).
        """
        key = norm_key(node.name)
        existing = self.children.get(key)
        if existing is None:
            self.children[key] = node
            return node
        existing.freq = existing.freq + node.freq if accumulate else max(existing.freq, node.freq)
        for grandchild in list(node.children.values()):
            existing.add_child(grandchild, accumulate)
        return existing

    def copy(self) -> Node:
        return Node(self.name, self.freq, {k: c.copy() for k, c in self.children.items()})


class FeatureTree:
    """A forest of root categories (`algorithm`, `data structure`, ...) with per-node frequencies."""

    def __init__(self, roots: dict[str, Node] | None = None, meta: dict[str, Any] | None = None) -> None:
        self.root = Node("<root>", 0, dict(roots or {}))
        self.meta: dict[str, Any] = dict(meta or {})

    # -- structure -------------------------------------------------------------------------
    @property
    def roots(self) -> dict[str, Node]:
        return self.root.children

    def copy(self) -> FeatureTree:
        return FeatureTree({k: n.copy() for k, n in self.roots.items()}, self.meta)

    def walk(self) -> Iterator[tuple[tuple[str, ...], Node]]:
        """(path of display names, node) for every node, depth first, children in insertion order."""
        stack: list[tuple[tuple[str, ...], Node]] = [((n.name,), n) for n in reversed(self.roots.values())]
        while stack:
            path, node = stack.pop()
            yield path, node
            stack.extend((path + (c.name,), c) for c in reversed(list(node.children.values())))

    def find(self, path: list[str] | tuple[str, ...]) -> Node | None:
        node = self.root
        for name in path:
            nxt = node.child(name)
            if nxt is None:
                return None
            node = nxt
        return node

    def num_nodes(self) -> int:
        return sum(1 for _ in self.walk())

    def num_leaves(self) -> int:
        return sum(1 for _, n in self.walk() if n.is_leaf)

    def leaf_names(self) -> list[str]:
        return [n.name for _, n in self.walk() if n.is_leaf]

    def add_path(self, path: list[str] | tuple[str, ...], freq: int = 1) -> Node:
        """Ensure `path` exists; every node on it gains `freq` (a snippet mentioning a leaf mentions its parents)."""
        node = self.root
        for name in path:
            nxt = node.child(name)
            if nxt is None:
                nxt = node.add_child(Node(clean_name(name), 0))
            nxt.freq += freq
            node = nxt
        return node

    # -- JSON forms ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": TREE_FORMAT, "meta": self.meta, "tree": _nodes_to_json(self.roots)}

    @classmethod
    def from_json(cls, data: Any, *, source: str = "<tree>") -> FeatureTree:
        """Read the frequency form, or a plain upstream-layout tree (every node then gets freq 1)."""
        if isinstance(data, dict) and data.get("format") == TREE_FORMAT:
            tree = cls(meta=data.get("meta") or {})
            _json_to_nodes(data.get("tree"), tree.root, source, ())
            return tree
        if isinstance(data, dict):
            return from_upstream(data)
        raise TreeError(f"{source}: a feature tree must be a JSON object, got {type(data).__name__}")

    def to_upstream(self) -> dict[str, Any]:
        return to_upstream(self.roots)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureTree:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"feature tree {path} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TreeError(f"feature tree {path} is not valid JSON: {exc}") from exc
        return cls.from_json(data, source=str(path))

    def content_hash(self) -> str:
        from xcoder.synth.common import stable_hash

        return stable_hash(_nodes_to_json(self.roots))


def _nodes_to_json(nodes: dict[str, Node]) -> dict[str, Any]:
    return {n.name: {"freq": n.freq, "children": _nodes_to_json(n.children)} for n in nodes.values()}


def _json_to_nodes(data: Any, parent: Node, source: str, path: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise TreeError(f"{source}: node {' > '.join(path) or '<root>'}: children must be an object")
    for name, body in data.items():
        where = " > ".join(path + (str(name),))
        if not isinstance(body, dict) or not isinstance(body.get("freq"), int) or body["freq"] < 0:
            raise TreeError(f"{source}: node {where}: expected {{'freq': int >= 0, 'children': {{...}}}}")
        node = parent.add_child(Node(clean_name(name), int(body["freq"])))
        _json_to_nodes(body.get("children", {}), node, source, path + (str(name),))


# -- upstream layout ---------------------------------------------------------------------------

def upstream_leaf_count(obj: Any) -> int:
    """Leaves of an upstream-layout tree, counted as upstream does [paper-recipe §2, C].

    list -> its length; dict with a "feature" key -> 1; other dict -> sum over its values, keys named
    "programming language"/"programming_language" skipped; anything else -> 0.
    """
    if isinstance(obj, list):
        return len(obj)
    if isinstance(obj, dict):
        if "feature" in obj:
            return 1
        return sum(upstream_leaf_count(v) for k, v in obj.items() if not is_dropped_key(k))
    return 0


def strip_dropped_keys(obj: Any) -> Any:
    """Copy of an upstream tree without "programming language" keys (at any depth)."""
    if isinstance(obj, dict):
        return {k: strip_dropped_keys(v) for k, v in obj.items() if not is_dropped_key(k)}
    if isinstance(obj, list):
        return [strip_dropped_keys(v) for v in obj]
    return obj


def _leaf_name(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("feature"), str):
        return item["feature"]
    return None


def from_upstream(data: dict[str, Any], freq: int = 1) -> FeatureTree:
    """Nodes for an upstream-layout dict; every node gets `freq`.

    Strings in lists and `{"feature": name, ...}` dicts are leaves; a string value under a key
    (`"summary": "..."`) is not a feature and is skipped; empty names are skipped.
    """
    tree = FeatureTree()

    def add(parent: Node, key: str, value: Any) -> None:
        if is_dropped_key(key) or not clean_name(key):
            return
        if isinstance(value, dict) and "feature" in value:
            name = _leaf_name(value) or key
            if clean_name(name):
                parent.add_child(Node(clean_name(name), freq), False)
            return
        if isinstance(value, dict):
            node = parent.add_child(Node(clean_name(key), freq), False)
            for k, v in value.items():
                add(node, str(k), v)
            return
        if isinstance(value, list):
            node = parent.add_child(Node(clean_name(key), freq), False)
            for item in value:
                name = _leaf_name(item)
                if name is not None and clean_name(name):
                    node.add_child(Node(clean_name(name), freq), False)
                elif isinstance(item, dict):  # a list of sub-trees: merge them under this node
                    for k, v in item.items():
                        add(node, str(k), v)
            return
        # scalars under a key (descriptions, summaries) are not features

    for key, value in data.items():
        add(tree.root, str(key), value)
    return tree


def to_upstream(nodes: dict[str, Node]) -> dict[str, Any]:
    """Upstream layout: a node whose children are all leaves becomes a list of their names.

    A node mixing leaf and inner children stays a dict and writes each leaf child as
    `{"feature": name}`, which upstream counts as one leaf; a root that is itself a leaf likewise.
    The upstream leaf count of the result equals the number of leaf nodes.
    """
    out: dict[str, Any] = {}
    for node in nodes.values():
        if node.is_leaf:
            out[node.name] = {"feature": node.name}
        elif all(c.is_leaf for c in node.children.values()):
            out[node.name] = [c.name for c in node.children.values()]
        else:
            out[node.name] = to_upstream(node.children)
    return out


def canonical_json(obj: Any) -> str:
    """Order-independent JSON of an upstream tree (keys and leaf lists sorted): the dedup key."""

    def canon(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: canon(x[k]) for k in sorted(x)}
        if isinstance(x, list):
            items = [canon(i) for i in x]
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True, ensure_ascii=False))
        return x

    return json.dumps(canon(obj), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
