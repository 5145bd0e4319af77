"""Frequency-weighted subtree sampling: the feature sets that seed each synthetic task.

At depth d every chosen node keeps `level_counts[d]` of its children (fewer if it has fewer),
drawn without replacement with probability proportional to `freq ** (1 / temperature)`
(EpiCoder's `conditions=[5,2,1,1], temperature=10`; the formula is our reading [paper-recipe §2, E/U]).
Mandatory feature paths are always kept, on top of the sampled children; a leaf-count filter, a per-subtree attempt
budget and
dedup by canonical JSON follow the later upstream sampler [paper-recipe §2, C-later]. One
`random.Random(seed)` drives everything, so a seed fixes the output.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import random
from collections.abc import Sequence
from typing import Any

from xcoder.records import FeatureSubtree
from xcoder.synth.features.tree import FeatureTree, Node, canonical_json, clean_name, norm_key, upstream_leaf_count

log = logging.getLogger(__name__)

PATH_SEP = ">"


@dataclasses.dataclass
class SamplerParams:
    """Knobs of `sample_subtrees` (mirrors `synth.features.sample` in the config)."""

    level_counts: list[int] = dataclasses.field(default_factory=lambda: [5, 2, 1, 1])
    temperature: float = 10.0
    repeat_last: bool = False  # deeper than level_counts: reuse the last count (until max_depth) instead of stopping
    max_depth: int = 8
    leaf_k: int | None = None  # nodes whose children are all leaves keep this many (upstream shape's leaf_k)
    mandatory: list[str] = dataclasses.field(default_factory=list)  # "a > b > c" paths kept in every subtree
    num_mandatory: int = 0  # extra sampled leaves per subtree marked mandatory for the task generator
    min_leaves: int | None = None
    max_leaves: int | None = None
    max_attempts: int = 500  # consecutive rejected draws before giving up
    dedup: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        self.level_counts = [int(k) for k in self.level_counts]
        if not self.level_counts or any(k < 0 for k in self.level_counts) or self.level_counts[0] < 1:
            raise ValueError(f"sample.level_counts must be non-negative ints with a positive first entry, got "
                             f"{self.level_counts}")
        if not self.temperature or self.temperature <= 0:
            raise ValueError(f"sample.temperature must be > 0, got {self.temperature}")
        if self.min_leaves is not None and self.max_leaves is not None and self.min_leaves > self.max_leaves:
            raise ValueError(f"sample.min_leaves ({self.min_leaves}) > sample.max_leaves ({self.max_leaves})")
        if self.max_attempts < 1:
            raise ValueError("sample.max_attempts must be >= 1")

    def count_at(self, depth: int) -> int:
        if depth >= self.max_depth:
            return 0
        if depth < len(self.level_counts):
            return self.level_counts[depth]
        return self.level_counts[-1] if self.repeat_last else 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_path(path: str | Sequence[str]) -> list[str]:
    parts = path.split(PATH_SEP) if isinstance(path, str) else list(path)
    parts = [clean_name(p) for p in parts]
    if not parts or not all(parts):
        raise ValueError(f"bad feature path {path!r}: expected 'category > ... > feature'")
    return parts


def weights(nodes: Sequence[Node], temperature: float) -> list[float]:
    """freq ** (1/T), computed in log space; nodes with freq <= 0 get weight 0."""
    return [math.exp(math.log(n.freq) / temperature) if n.freq > 0 else 0.0 for n in nodes]


def weighted_without_replacement(items: Sequence[Node], k: int, temperature: float, rng: random.Random,
                                 item_weights: Sequence[float] | None = None) -> list[Node]:
    """Sequential weighted draws without replacement (all-zero weights fall back to uniform)."""
    if k <= 0 or not items:
        return []
    pool = list(items)
    w = list(item_weights) if item_weights is not None else weights(pool, temperature)
    if not any(w):
        w = [1.0] * len(pool)
    chosen: list[Node] = []
    for _ in range(min(k, len(pool))):
        total = sum(w)
        r = rng.random() * total
        acc = 0.0
        pick = max(i for i, wi in enumerate(w) if wi > 0)  # float round-off at the top end
        for i, wi in enumerate(w):
            acc += wi
            if r < acc and wi > 0:
                pick = i
                break
        chosen.append(pool.pop(pick))
        w.pop(pick)
        if not any(w):
            w = [1.0] * len(w)
    return chosen


class Sampler:
    """Draws subtrees of one tree under fixed `SamplerParams`."""

    def __init__(self, tree: FeatureTree, params: SamplerParams) -> None:
        if not tree.roots:
            raise ValueError("cannot sample from an empty feature tree")
        self.tree = tree
        self.params = params
        self.mandatory_paths: list[list[str]] = []
        for raw in params.mandatory:
            path = parse_path(raw)
            if tree.find(path) is None:
                raise ValueError(f"mandatory feature {raw!r} is not in the tree")
            self.mandatory_paths.append(path)
        self._mandatory_keys = [tuple(norm_key(x) for x in p) for p in self.mandatory_paths]
        self._weights: dict[int, tuple[list[Node], list[float]]] = {}  # per source node; the tree must not change

    def _forced(self, prefix_keys: tuple[str, ...]) -> set[str]:
        depth = len(prefix_keys)
        return {p[depth] for p in self._mandatory_keys if len(p) > depth and p[:depth] == prefix_keys}

    def draw(self, rng: random.Random) -> FeatureTree:
        """One subtree (a copy of the chosen nodes with their frequencies)."""
        out = FeatureTree()
        params = self.params

        def expand(src: Node, dst: Node, prefix_keys: tuple[str, ...]) -> None:
            if not src.children:
                return
            depth = len(prefix_keys)
            k = params.count_at(depth)
            if params.leaf_k is not None and depth > 0 and k > 0 and all(not c.children for c in src.children.values()):
                k = params.leaf_k
            forced = self._forced(prefix_keys) if self._mandatory_keys else set()
            if forced:
                keep = [c for key, c in src.children.items() if key in forced]
                rest = [c for key, c in src.children.items() if key not in forced]
                keep += weighted_without_replacement(rest, k, params.temperature, rng)  # forced ones come on top
            else:
                cached = self._weights.get(id(src))
                if cached is None:
                    rest = list(src.children.values())
                    cached = self._weights[id(src)] = (rest, weights(rest, params.temperature))
                keep = weighted_without_replacement(cached[0], k, params.temperature, rng, cached[1])
            chosen = {id(c) for c in keep}
            for key, child in src.children.items():  # tree order, so equal draws serialise identically
                if id(child) in chosen:
                    node = dst.children[key] = Node(child.name, child.freq)
                    expand(child, node, prefix_keys + (key,))

        expand(self.tree.root, out.root, ())
        return out

    def sample(self, n: int) -> tuple[list[FeatureSubtree], dict[str, Any]]:
        """`n` accepted subtrees as records (idx 0..n-1) and the counts (rejections by reason)."""
        p = self.params
        rng = random.Random(p.seed)
        seen: set[str] = set()
        records: list[FeatureSubtree] = []
        rejected: collections.Counter[str] = collections.Counter()
        draws = 0
        failures = 0
        mandatory_names = [path[-1] for path in self.mandatory_paths]
        sampler_json = json.dumps({"params": p.as_dict(), "tree": self.tree.content_hash()}, sort_keys=True)
        while len(records) < n:
            if failures >= p.max_attempts:
                log.warning("sampler: %d consecutive rejected draws (%s); stopping at %d of %d subtrees",
                            failures, dict(rejected), len(records), n)
                break
            draws += 1
            sub = self.draw(rng)
            features = sub.to_upstream()
            leaf_count = upstream_leaf_count(features)
            reason = None
            if p.min_leaves is not None and leaf_count < p.min_leaves:
                reason = "too_few_leaves"
            elif p.max_leaves is not None and leaf_count > p.max_leaves:
                reason = "too_many_leaves"
            else:
                key = canonical_json(features)
                if p.dedup and key in seen:
                    reason = "duplicate"
                seen.add(key)
            if reason:
                rejected[reason] += 1
                failures += 1
                continue
            failures = 0
            mandatory = list(mandatory_names)
            if p.num_mandatory > 0:
                leaves = [name for name in sub.leaf_names() if name not in mandatory]
                mandatory += rng.sample(leaves, min(p.num_mandatory, len(leaves)))
            records.append(FeatureSubtree(idx=len(records), features=json.dumps(features, ensure_ascii=False),
                                          leaf_count=leaf_count, mandatory_features=mandatory, sampler=sampler_json))
        counts = {"requested": n, "sampled": len(records), "kept": len(records), "draws": draws,
                  "dropped": sum(rejected.values()), "rejected": dict(sorted(rejected.items())),
                  "shortfall": n - len(records)}
        return records, counts


def sample_subtrees(tree: FeatureTree, n: int, params: SamplerParams) -> tuple[list[FeatureSubtree], dict[str, Any]]:
    return Sampler(tree, params).sample(n)


def to_upstream_jsonl_rows(records: Sequence[FeatureSubtree]) -> list[dict[str, Any]]:
    """Rows in upstream `feature_all.jsonl` form: {features, mandatory_features, idx, leaf_count}."""
    return [{"features": json.loads(r.features), "mandatory_features": list(r.mandatory_features),
             "idx": r.idx, "leaf_count": r.leaf_count} for r in records]
