"""Build the shipped seed feature tree from its hand-written taxonomy.

`data-recipe/data/features/seed_taxonomy.yaml` is the source (upstream layout, leaves tagged with a
commonness tier `[1..5]`); this module turns it into `seed_tree.json` (frequency form). A leaf's
frequency is its tier's value in `TIER_FREQ`; an inner node's frequency is the sum of its
children's, i.e. the tree reads as if each tier value were a count of seed snippets using it.

    python -m xcoder.synth.features.seed [--taxonomy PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from xcoder.synth.features.tree import FeatureTree, Node, TreeError, clean_name

DATA_DIR = Path(__file__).resolve().parents[3] / "data-recipe" / "data" / "features"
TAXONOMY = DATA_DIR / "seed_taxonomy.yaml"
SEED_TREE = DATA_DIR / "seed_tree.json"

TIER_FREQ = {1: 2, 2: 6, 3: 15, 4: 35, 5: 80}  # roughly x2.4 per tier: 1 rare .. 5 ubiquitous
DEFAULT_TIER = 2
_TIER = re.compile(r"^(.*?)\s*\[([1-5])\]\s*$")


def parse_leaf(text: str) -> tuple[str, int]:
    """`"prefix sums [5]"` -> ("prefix sums", 80); no tag -> the default tier."""
    match = _TIER.match(text)
    name, tier = (match.group(1), int(match.group(2))) if match else (text, DEFAULT_TIER)
    return clean_name(name), TIER_FREQ[tier]


def build_seed_tree(taxonomy: dict[str, Any], source: str = "<taxonomy>") -> FeatureTree:
    tree = FeatureTree(meta={"made_by": "xcoder.synth.features.seed", "source": source,
                             "tier_freq": {str(k): v for k, v in TIER_FREQ.items()}})

    def build(parent: Node, key: str, value: Any, path: tuple[str, ...]) -> int:
        where = " > ".join(path + (key,))
        node = Node(clean_name(key), 0)
        if isinstance(value, dict):
            for k, v in value.items():
                node.freq += build(node, str(k), v, path + (key,))
        elif isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    raise TreeError(f"{source}: {where}: list items must be strings, got {item!r}")
                name, freq = parse_leaf(item)
                if node.child(name) is not None:
                    raise TreeError(f"{source}: {where}: duplicate feature {name!r}")
                node.add_child(Node(name, freq))
                node.freq += freq
        else:
            raise TreeError(f"{source}: {where}: expected a mapping or a list, got {type(value).__name__}")
        if parent.child(node.name) is not None:
            raise TreeError(f"{source}: {where}: duplicate category")
        parent.add_child(node)
        return node.freq

    for key, value in taxonomy.items():
        build(tree.root, str(key), value, ())
    return tree


def load_taxonomy(path: str | Path = TAXONOMY) -> FeatureTree:
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TreeError(f"{path}: the taxonomy must be a mapping of root categories")
    return build_seed_tree(data, source=path.name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build seed_tree.json from the hand-written taxonomy.")
    parser.add_argument("--taxonomy", default=str(TAXONOMY))
    parser.add_argument("--out", default=str(SEED_TREE))
    args = parser.parse_args(argv)
    tree = load_taxonomy(args.taxonomy)
    tree.save(args.out)
    print(f"{args.out}: {tree.num_nodes()} nodes, {tree.num_leaves()} leaves, {len(tree.roots)} roots")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
