"""Merge per-snippet feature trees into one tree with frequencies.

Recursive union on normalised names (`tree.norm_key`): a feature named by k snippets gets
frequency k; a leaf in one tree and a category in another becomes the category (list-vs-dict
promotion, as in EpiCoder / later upstream [paper-recipe §2, E/C-later]). Frequencies are summed
counts, not EpiCoder's averages, so they stay "how many snippets use this".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from xcoder.synth.features.tree import FeatureTree, Node, from_upstream


def merge_trees(trees: Iterable[FeatureTree], meta: dict[str, Any] | None = None) -> FeatureTree:
    """Union of `trees`; frequencies add up; inputs are not modified."""
    merged = FeatureTree(meta=meta)
    for tree in trees:
        for node in tree.roots.values():
            merged.root.add_child(node.copy(), accumulate=True)
    return merged


def merge_upstream(trees: Iterable[dict[str, Any]], meta: dict[str, Any] | None = None) -> FeatureTree:
    """Merge upstream-layout per-snippet trees; each snippet counts once per feature it names."""
    return merge_trees((from_upstream(t, freq=1) for t in trees), meta=meta)


def graft(base: FeatureTree, additions: FeatureTree) -> int:
    """Add the nodes of `additions` that `base` lacks (frequencies of existing nodes unchanged).

    Used by evolution: the LLM echoes the sampled subtree with new nodes, and only the new nodes
    (with their own frequency) may enter the tree, so evolution never inflates observed counts.
    Returns the number of nodes added.
    """
    added = 0

    def walk(dst: Node, src: Node) -> None:
        nonlocal added
        for node in src.children.values():
            existing = dst.child(node.name)
            if existing is None:
                fresh = node.copy()
                dst.add_child(fresh)
                added += sum(1 for _ in _iter(fresh))
            else:
                walk(existing, node)

    walk(base.root, additions.root)
    return added


def _iter(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children.values():
        yield from _iter(child)
