"""Domain-specific evolution: grow the feature tree in breadth and depth, within competitive programming.

Each step samples frequency-weighted subtrees (EpiCoder's `conditions=[2,1,2,1]`), asks the LLM to
add siblings and finer children, and grafts only the *new* nodes back (capped per answer and per
step, each with `new_node_freq`), so growth is bounded and observed frequencies stay untouched.
A step is keyed by its index, the tree it started from, the template, params and knobs; its
additions are journaled, so a rerun replays finished steps without asking the LLM.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import random
from typing import Any

from tqdm import tqdm

from xcoder.synth import llm_io
from xcoder.synth.common import Journal, stable_hash
from xcoder.synth.features.merge import graft
from xcoder.synth.features.sample import Sampler, SamplerParams
from xcoder.synth.features.schema import TreeRejected, TreeSchema
from xcoder.synth.features.tree import FeatureTree, Node

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EvolveParams:
    steps: int = 100  # EpiCoder default [paper-recipe §2, E]
    samples_per_step: int = 4  # subtrees expanded (one request each) per step
    level_counts: list[int] = dataclasses.field(default_factory=lambda: [2, 1, 2, 1])  # [paper-recipe §2, E]
    temperature: float = 10.0
    min_siblings: int = 2  # "add at least 2 new sibling features to each existing node" [paper-recipe §2, E]
    max_new_per_answer: int = 30
    max_new_per_step: int = 60
    new_node_freq: int = 1
    max_failed_per_step: int = 0  # more failed requests than this stop the stage (rerun retries from the cache)
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("steps", "max_failed_per_step"):
            if getattr(self, name) < 0:
                raise ValueError(f"evolve.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("samples_per_step", "max_new_per_answer", "max_new_per_step", "new_node_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"evolve.{name} must be >= 1, got {getattr(self, name)}")


class EvolutionStopped(RuntimeError):
    """Too many requests of one step failed; the step is not journaled, a rerun retries it."""


def new_nodes(base: FeatureTree, answer: FeatureTree, limit: int, freq: int) -> FeatureTree:
    """The nodes of `answer` missing from `base` (breadth-first, at most `limit`), as a graftable tree."""
    additions = FeatureTree()
    taken = 0
    queue: collections.deque[tuple[Node, Node | None, Node]] = collections.deque(
        (child, base.root, additions.root) for child in answer.roots.values())
    while queue and taken < limit:
        node, base_parent, add_parent = queue.popleft()
        existing = base_parent.child(node.name) if base_parent is not None else None
        if existing is not None:
            mirror = add_parent.child(node.name) or add_parent.add_child(Node(existing.name, 0))
            queue.extend((c, existing, mirror) for c in node.children.values())
            continue
        fresh = add_parent.add_child(Node(node.name, freq))
        taken += 1
        queue.extend((c, None, fresh) for c in node.children.values())
    _prune_empty(additions.root)
    return additions


def _prune_empty(node: Node) -> bool:
    """Drop mirror nodes (freq 0, existing in base) that lead to no new node; True if `node` stays."""
    for key in list(node.children):
        if not _prune_empty(node.children[key]):
            del node.children[key]
    return node.freq > 0 or bool(node.children)


def step_key(step: int, tree: FeatureTree, template_version: str, params: dict[str, Any], evo: EvolveParams,
             model: str | None) -> str:
    return stable_hash("features.evolve", step, tree.content_hash(), template_version, params,
                       dataclasses.asdict(evo) | {"steps": None}, model)


def evolve_tree(tree: FeatureTree, client: Any, template: Any, params: dict[str, Any], evo: EvolveParams,
                journal: Journal, *, schema: TreeSchema | None = None,
                model: str | None = None) -> tuple[FeatureTree, dict[str, Any]]:
    """Run `evo.steps` evolution steps on a copy of `tree`; returns it and the counts."""
    tree = tree.copy()
    schema = schema or TreeSchema(max_leaves=2000)
    drops: collections.Counter[str] = collections.Counter()
    added_total = replayed = requested = 0
    start_nodes = tree.num_nodes()
    for step in tqdm(range(evo.steps), desc="features.evolve", unit="step", disable=evo.steps < 2):
        key = step_key(step, tree, template.version_id, params, evo, model)
        entry = journal.get(key)
        if entry is not None:
            for rec in entry["records"]:
                added_total += graft(tree, FeatureTree.from_json(rec))
            drops.update(entry.get("drops") or {})
            replayed += 1
            continue
        rng = random.Random(stable_hash(evo.seed, "evolve", step))
        sampler = Sampler(tree,
                          SamplerParams(level_counts=evo.level_counts, temperature=evo.temperature, seed=evo.seed))
        samples = [sampler.draw(rng) for _ in range(evo.samples_per_step)]
        requests = [llm_io.build_request(
            template, {"subtree_json": json.dumps(s.to_upstream(), indent=2, ensure_ascii=False),
                       "min_siblings": evo.min_siblings},
            params, model=model, meta={"unit": key, "step": f"features.evolve.{step}", "sample": i})
            for i, s in enumerate(samples)]
        results = client.run(requests, desc=f"features.evolve step {step}")
        requested += len(requests)
        step_drops: collections.Counter[str] = collections.Counter()
        additions: list[dict[str, Any]] = []
        remaining = evo.max_new_per_step
        failed = 0
        for sample, result in zip(samples, results):
            try:
                obj, _ = llm_io.answer_json(result)
                answer, _ = dataclasses.replace(schema,
                                                allowed_roots=[n.name for n in sample.roots.values()]).validate(obj)
                if len(answer.roots) < len(obj):
                    step_drops["new_root"] += len(obj) - len(answer.roots)
            except (llm_io.ParseFailure, TreeRejected) as exc:
                step_drops[exc.reason] += 1
                failed += exc.reason == "llm_error"
                continue
            if remaining <= 0:
                step_drops["step_cap"] += 1
                continue
            add = new_nodes(tree, answer, min(evo.max_new_per_answer, remaining), evo.new_node_freq)
            if add.num_nodes() == 0:
                step_drops["nothing_new"] += 1
                continue
            n = graft(tree, add)
            remaining -= n
            added_total += n
            additions.append(add.to_json())
        if failed > evo.max_failed_per_step:
            raise EvolutionStopped(f"features.evolve step {step}: {failed} of {len(requests)} requests failed "
                                   f"(max_failed_per_step={evo.max_failed_per_step}); rerun to retry, finished "
                                   f"requests come from the LLM cache")
        journal.add(key, additions, dict(step_drops), step=step, added=evo.max_new_per_step - remaining)
        drops.update(step_drops)
    counts = {"steps": evo.steps, "steps_replayed_from_journal": replayed, "requests": requested,
              "nodes_before": start_nodes, "nodes_after": tree.num_nodes(), "nodes_added": added_total,
              "kept": added_total, "dropped": sum(v for k, v in drops.items() if k != "new_root"),
              "drop_reasons": dict(sorted(drops.items()))}
    return tree, counts
