"""`xcoder synth` stages for feature trees: `features.extract`, `features.evolve`, `features.sample`.

Each is `fn(cfg) -> counts`. Extract and evolve journal their units (snippets, steps) under
`synth.features.output_dir`, so a rerun only does missing work; sample is cheap and deterministic
and is skipped when its output already matches its tree and parameters.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xcoder.records import FeatureSubtree, read_records, write_records
from xcoder.runs import write_json_atomic
from xcoder.synth import llm_io
from xcoder.synth.common import Journal, stable_hash
from xcoder.synth.features.evolve import EvolveParams, evolve_tree
from xcoder.synth.features.extract import extract_trees, merge_extracted
from xcoder.synth.features.sample import SamplerParams, sample_subtrees, to_upstream_jsonl_rows
from xcoder.synth.features.schema import TreeSchema
from xcoder.synth.features.seeds import SeedSpec, load_snippets
from xcoder.synth.features.stats import format_stats, write_stats
from xcoder.synth.features.tree import FeatureTree

log = logging.getLogger(__name__)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _schema(node: DictConfig) -> TreeSchema:
    return TreeSchema(**_plain(node))


def _report_tree(tree: FeatureTree, out_dir: Path, name: str, plot: bool) -> dict[str, Any]:
    stats = write_stats(tree, out_dir, name, plot=plot)
    log.info("%s", format_stats(stats, title=name))
    return {"nodes": stats["nodes"], "leaves": stats["leaves"], "max_depth": stats["max_depth"],
            "stats_json": str(out_dir / f"{name}_stats.json")}


def extract(cfg: DictConfig) -> dict[str, Any]:
    """Seed snippets -> per-snippet trees (journal) -> `merged_tree` with frequencies + stats."""
    fcfg = cfg.synth.features
    xcfg = fcfg.extract
    out_dir = Path(fcfg.output_dir)
    snippets, seed_counts = load_snippets(SeedSpec(**_plain(xcfg.seed)))
    if not snippets:
        raise ValueError("features.extract: the seed input holds no snippets with code")
    template = llm_io.load_template(xcfg.template)
    params = llm_io.params_of(xcfg.params)
    client = llm_io.make_client(cfg, stage="features.extract")
    journal = Journal(out_dir / "extract" / "journal.jsonl")
    trees, counts = extract_trees(snippets, client, template, params, _schema(xcfg.schema), journal,
                                  model=xcfg.model, batch_size=int(cfg.synth.batch_size))
    if not trees:
        raise RuntimeError(f"features.extract: no snippet produced a valid tree ({counts['drop_reasons']})")
    merged = merge_extracted(trees, meta={"made_by": "features.extract", "snippets": len(trees),
                                          "template": template.version_id})
    merged.save(fcfg.merged_tree)
    counts.update(seed=seed_counts, merged_tree=str(fcfg.merged_tree),
                  tree=_report_tree(merged, out_dir, "merged_tree", bool(fcfg.plots)), llm_usage=llm_io.usage(client))
    return counts


def evolve(cfg: DictConfig) -> dict[str, Any]:
    """Input tree -> `evo.steps` journaled evolution steps -> `evolved_tree` + stats."""
    fcfg = cfg.synth.features
    ecfg = fcfg.evolve
    out_dir = Path(fcfg.output_dir)
    tree = FeatureTree.load(ecfg.input_tree)
    evo = EvolveParams(steps=int(ecfg.steps), samples_per_step=int(ecfg.samples_per_step),
                       level_counts=list(ecfg.level_counts), temperature=float(ecfg.temperature),
                       min_siblings=int(ecfg.min_siblings), max_new_per_answer=int(ecfg.max_new_per_answer),
                       max_new_per_step=int(ecfg.max_new_per_step), new_node_freq=int(ecfg.new_node_freq),
                       max_failed_per_step=int(ecfg.max_failed_per_step), seed=int(cfg.synth.seed))
    template = llm_io.load_template(ecfg.template)
    params = llm_io.params_of(ecfg.params)
    client = llm_io.make_client(cfg, stage="features.evolve") if evo.steps > 0 else None
    journal = Journal(out_dir / "evolve" / "journal.jsonl")
    evolved, counts = evolve_tree(tree, client, template, params, evo, journal, schema=_schema(ecfg.schema),
                                  model=ecfg.model)
    evolved.meta = dict(tree.meta, evolved_by=template.version_id, evolve_steps=evo.steps,
                        evolved_from=str(ecfg.input_tree))
    evolved.save(fcfg.evolved_tree)
    counts.update(input_tree=str(ecfg.input_tree), evolved_tree=str(fcfg.evolved_tree),
                  tree=_report_tree(evolved, out_dir, "evolved_tree", bool(fcfg.plots)))
    if client is not None:
        counts["llm_usage"] = llm_io.usage(client)
    return counts


def sampler_params(cfg: DictConfig) -> SamplerParams:
    scfg = cfg.synth.features.sample
    return SamplerParams(
        level_counts=list(scfg.level_counts), temperature=float(scfg.temperature), repeat_last=bool(scfg.repeat_last),
        max_depth=int(scfg.max_depth), leaf_k=None if scfg.leaf_k is None else int(scfg.leaf_k),
        mandatory=list(scfg.mandatory), num_mandatory=int(scfg.num_mandatory),
        min_leaves=None if scfg.min_leaves is None else int(scfg.min_leaves),
        max_leaves=None if scfg.max_leaves is None else int(scfg.max_leaves),
        max_attempts=int(scfg.max_attempts), dedup=bool(scfg.dedup), seed=int(scfg.seed))


def _write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def sample(cfg: DictConfig) -> dict[str, Any]:
    """Tree -> `num_subtrees` FeatureSubtree records (parquet + upstream JSONL) + tree stats."""
    fcfg = cfg.synth.features
    scfg = fcfg.sample
    out_dir = Path(fcfg.output_dir)
    tree = FeatureTree.load(scfg.input_tree)
    params = sampler_params(cfg)
    n = int(scfg.num_subtrees)
    parquet, jsonl = Path(fcfg.subtrees_parquet), Path(fcfg.subtrees_jsonl)
    done_path = out_dir / "sample_done.json"
    key = stable_hash("features.sample", tree.content_hash(), params.as_dict(), n)
    if parquet.exists() and jsonl.exists() and done_path.exists():
        done = json.loads(done_path.read_text(encoding="utf-8"))
        if done.get("key") == key:
            records = read_records(parquet, FeatureSubtree)
            if len(records) == done["counts"]["sampled"]:
                log.info("features.sample: %s is up to date (%d subtrees); skipping", parquet, len(records))
                return dict(done["counts"], skipped=True)
    tree_counts = _report_tree(tree, out_dir, "input_tree", bool(fcfg.plots))
    records, counts = sample_subtrees(tree, n, params)
    if not records:
        raise RuntimeError(f"features.sample: no subtree passed the filters ({counts['rejected']}); "
                           "loosen synth.features.sample.min_leaves/max_leaves")
    write_records(parquet, records, FeatureSubtree)
    _write_jsonl_atomic(jsonl, to_upstream_jsonl_rows(records))
    leaf_counts = [r.leaf_count for r in records]
    counts.update(input_tree=str(scfg.input_tree), tree=tree_counts, subtrees_parquet=str(parquet),
                  subtrees_jsonl=str(jsonl), leaf_count_min=min(leaf_counts), leaf_count_max=max(leaf_counts),
                  leaf_count_mean=round(sum(leaf_counts) / len(leaf_counts), 2))
    write_json_atomic(done_path, {"key": key, "counts": counts})
    log.info("features.sample: %d subtrees (leaves %d..%d) -> %s", len(records), counts["leaf_count_min"],
             counts["leaf_count_max"], parquet)
    return counts
