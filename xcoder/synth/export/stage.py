"""Stage `export`: kept tasks -> SFT parquet + RL parquet (verl schema) + data card.

Export is a pure function of the earlier stages' files, so rerunning it is cheap and idempotent;
files are written atomically, and only when their content changed (a rerun leaves identical
parquet files and data card untouched, so sft/rl see nothing new).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from omegaconf import DictConfig

from xcoder.records import (STYLES, FeatureSubtree, RLRow, SFTRow, Solution, Task, Verification, read_records,
                            to_table, validate_table)
from xcoder.synth import llm_io
from xcoder.synth.common import DropCounter, write_json_atomic
from xcoder.synth.dedup import code_fingerprint
from xcoder.synth.export import build, card
from xcoder.synth.solutions.stage import solutions_parquet
from xcoder.synth.tasks.stage import tasks_parquet
from xcoder.synth.verify.stage import verify_parquet

log = logging.getLogger(__name__)

STAGE_ORDER = ("features", "tasks", "solutions", "tests", "verify", "export")


def stage_dir(cfg: DictConfig) -> Path:
    return Path(cfg.synth.output_dir) / "export"


def prompt_messages(tpl: Any, task: Task, system: bool) -> list[dict[str, str]]:
    msgs = tpl.render(question=task.question, starter_code=task.starter_code or "", style=task.style)
    return [m for m in msgs if system or m["role"] != "system"]


def run(cfg: DictConfig) -> dict[str, Any]:
    ecfg = cfg.synth.export
    tasks = {t.task_id: t for t in read_records(tasks_parquet(cfg), Task)}
    sols: dict[str, list[Solution]] = collections.defaultdict(list)
    for s in read_records(solutions_parquet(cfg), Solution):
        sols[s.task_id].append(s)
    vers = read_records(verify_parquet(cfg), Verification)
    tpl = llm_io.load_template(cfg.synth.solutions.template)
    kept = [v for v in vers if v.status == "kept" and v.task_id in tasks]

    sft_drops = DropCounter()
    sft_rows: list[SFTRow] = []
    seen_code: set[str] = set()
    for v in kept:
        task = tasks[v.task_id]
        prefix = prompt_messages(tpl, task, system=bool(ecfg.sft.system_prompt))
        candidates = build.passing_solutions(v, sols[v.task_id])
        if ecfg.sft.solutions == "golden":
            candidates = [s for s in candidates if s.solution_id == v.golden_solution_id]
        elif ecfg.sft.solutions != "passing":
            raise ValueError(f"synth.export.sft.solutions: unknown {ecfg.sft.solutions!r} (passing | golden)")
        sft_drops.merge({"failed_final_tests": len(sols[v.task_id]) - len(build.passing_solutions(v, sols[v.task_id]))})
        taken = 0
        for s in candidates:
            fp = code_fingerprint(s.code)
            if ecfg.dedup_solutions and fp in seen_code:
                sft_drops.drop("duplicate_solution")
                continue
            if taken >= int(ecfg.sft.max_per_task):
                sft_drops.drop("over_max_per_task")
                continue
            seen_code.add(fp)
            sft_rows.append(build.sft_row(task, s, prefix, build.selected_features(task)))
            taken += 1
    sft_drops.kept = len(sft_rows)

    buckets = {k: float(x) for k, x in ecfg.rl.buckets.items()}
    rl_pairs = []
    for i, v in enumerate(kept):
        task = tasks[v.task_id]
        rate = build.teacher_pass_rate(v)
        prompt = prompt_messages(tpl, task, system=bool(ecfg.rl.system_prompt))
        rl_pairs.append((rate, build.rl_row(task, v, prompt, index=i, data_source=ecfg.rl.data_source,
                                            vote_normalize=str(cfg.synth.verify.vote.normalize),
                                            pass_rate=rate, difficulty=build.difficulty_bucket(rate, buckets))))
    rl_rows: list[RLRow] = build.order_rows(rl_pairs, ecfg.rl.order)

    data_changed = write_records_if_changed(cfg.synth.sft_parquet, sft_rows, SFTRow)
    data_changed = write_records_if_changed(cfg.synth.rl_parquet, rl_rows, RLRow) or data_changed
    counts = {"kept_tasks": len(kept), "sft_rows": len(sft_rows), "rl_rows": len(rl_rows),
              "sft": sft_drops.as_dict(), "rl_order": ecfg.rl.order}
    write_json_if_changed(stage_dir(cfg) / "manifest.json", counts)
    card_md = stage_dir(cfg) / "DATA_CARD.md"
    if not data_changed and card_md.is_file() and (stage_dir(cfg) / "data_card.json").is_file():
        # the card describes how THIS data was made (LLM usage, units processed): a rerun that
        # produced identical parquet must not replace it with the rerun's "0 processed, no usage"
        log.info("data unchanged; data card %s kept", card_md)
        data_card = str(card_md)
    else:
        data_card = build_card(cfg, tasks, sols, vers, kept, sft_rows, rl_rows, counts)
    counts["data_card"] = data_card
    return counts


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_records_if_changed(path: str | Path, rows: list[Any], record_type: type) -> bool:
    """Write the parquet atomically, but leave an existing file with identical bytes untouched.

    Why: downstream stages (sft, rl) key their work on these files; a rerun of an unchanged
    pipeline must not hand them a "new" file (new mtime) and so trigger retraining.
    Returns True when the file was (re)written.
    """
    path = Path(path)
    table = to_table(rows, record_type)
    validate_table(table, record_type, source="<in-memory>")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    if _sha256(tmp) == _sha256(path):
        tmp.unlink()
        log.info("%s unchanged (same content hash); left untouched", path)
        return False
    os.replace(tmp, path)
    return True


def write_json_if_changed(path: Path, data: Any) -> bool:
    """`write_json_atomic` unless the file already holds exactly this JSON."""
    if path.is_file():
        try:
            if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(data, default=str)):
                return False
        except json.JSONDecodeError:
            pass
    write_json_atomic(path, data)
    return True


def _manifest(cfg: DictConfig, stage: str) -> dict[str, Any]:
    path = (Path(cfg.synth.features.output_dir) if stage == "features" else Path(cfg.synth.output_dir) / stage) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def build_card(cfg, tasks, sols, vers, kept, sft_rows, rl_rows, export_counts) -> str:
    out_dir = stage_dir(cfg)
    stages = {s: _manifest(cfg, s) for s in STAGE_ORDER[:-1]}
    run_manifest = Path(cfg.synth.output_dir) / "manifest.json"
    if not stages["features"] and run_manifest.exists():  # the sampler reports through the run manifest
        sampled = json.loads(run_manifest.read_text()).get("stages", {}).get("features.sample", {})
        if sampled:
            stages["features"] = {"kept": sampled.get("sampled"), "dropped": sum((sampled.get("rejected") or {}).values()),
                                  "drop_reasons": sampled.get("rejected") or {}}
    stages = {s: m for s, m in stages.items() if m}
    stages["export (SFT solutions)"] = export_counts["sft"]
    kept_ids = {v.task_id for v in kept}
    final_tests = [t for v in kept for t in json.loads(v.tests)]
    per_task = [len(json.loads(v.tests)) for v in kept]
    agreements = [t["agreement"] for t in final_tests]
    all_agreements = [x["agreement"] for v in vers for x in json.loads(v.votes) if x.get("successes")]
    edges = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    subtree_leaves: dict[int, int] = {}
    sub_path = Path(cfg.synth.features.subtrees_parquet)
    if sub_path.exists():
        for s in read_records(sub_path, FeatureSubtree):
            subtree_leaves[s.idx] = len(card.leaves(json.loads(s.features))) or s.leaf_count
    selected = {tid: card.leaves(json.loads(t.stage1).get("selected_features_tree", {})) for tid, t in tasks.items()
                if tid in kept_ids}
    shares = [len(selected[tid]) / subtree_leaves[tasks[tid].subtree_idx] for tid in selected
              if subtree_leaves.get(tasks[tid].subtree_idx)]
    sft_tokens = [r.num_tokens for r in sft_rows]
    task_drops = stages.get("tasks", {}).get("drop_reasons") or {}
    token_edges = [0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 10**9]
    usage: dict[str, Any] = {}  # client.usage() is keyed by the stage's accounting bucket already
    for m in stages.values():
        if isinstance(m, dict) and isinstance(m.get("llm_usage"), dict):
            usage.update(m["llm_usage"])
    data = {
        "run": cfg.run.name,
        "outputs": {"sft_parquet": str(cfg.synth.sft_parquet), "rl_parquet": str(cfg.synth.rl_parquet),
                    "sft_rows": len(sft_rows), "rl_rows": len(rl_rows)},
        "stages": stages,
        "styles": {
            "tasks": {s: sum(t.style == s for t in tasks.values()) for s in STYLES},
            "kept_tasks": {s: sum(tasks[i].style == s for i in kept_ids) for s in STYLES},
            "sft_rows": {s: sum(r.style == s for r in sft_rows) for s in STYLES},
        },
        "feature_coverage": {
            "distinct_selected_features": len({f for fs in selected.values() for f in fs}),
            "selected_per_task": card.quantiles([len(v) for v in selected.values()]),
            "selected_share": card.quantiles([round(x, 3) for x in shares]),
        },
        "tests": {
            "final_tests": len(final_tests),
            "per_task": card.quantiles(per_task),
            "per_task_histogram": dict(sorted(collections.Counter(per_task).items())),
            "by_source": dict(collections.Counter(t.get("source", "") for t in final_tests)),
            "by_tag": dict(collections.Counter(t.get("tag", "") for t in final_tests)),
            "test_drop_reasons": stages.get("verify", {}).get("test_drop_reasons", {}),
            "agreement_histogram": card.histogram(agreements, edges),
            "agreement_histogram_all": card.histogram(all_agreements, edges),
        },
        "verification": verification_summary(cfg, kept),
        "golden": {"holdout_pass": card.quantiles([v.golden_holdout_pass for v in kept]),
                   "select_score": card.quantiles([v.golden_select_score for v in kept])},
        "lengths": {
            "sft_tokens": card.quantiles(sft_tokens),
            "sft_tokens_histogram": card.histogram(sft_tokens, token_edges),
            "question_chars": card.quantiles([len(tasks[i].question) for i in kept_ids]),
        },
        "dedup": {
            "near_duplicate_statement": task_drops.get("near_duplicate_statement", 0),
            "benchmark_contaminated": task_drops.get("benchmark_contaminated", 0),
            "duplicate_solution": export_counts["sft"]["drop_reasons"].get("duplicate_solution", 0),
            "benchmarks": list(cfg.synth.dedup.benchmarks or []),
        },
        "llm_usage": usage,
    }
    md = out_dir / "DATA_CARD.md"
    if md.is_file() and not write_json_if_changed(out_dir / "data_card.json", data):
        log.info("data card unchanged; %s left untouched", md)
        return str(md)
    write_json_atomic(out_dir / "data_card.json", data)
    plots = card.plot_card(data, out_dir) if cfg.synth.export.plots else []
    tmp = md.with_name(".DATA_CARD.md.tmp")
    tmp.write_text(card.render_markdown(data, plots), encoding="utf-8")
    tmp.replace(md)
    return str(md)


def verification_summary(cfg: DictConfig, kept: list[Verification]) -> dict[str, Any]:
    """The kept tasks' verification evidence, as distributions a user can filter on later."""
    evidence = [json.loads(v.evidence or "{}") for v in kept]
    share = [e["full_agreement_share"] for e in evidence if "full_agreement_share" in e]
    est = [e["est_precision"] for e in evidence if e.get("est_precision") is not None]
    edges = [0.0, 0.25, 0.5, 0.625, 0.75, 0.875, 1.0]
    return {
        "preset": str(cfg.synth.verify.preset),
        "agreeing_share": card.quantiles(share),
        "agreeing_share_histogram": card.histogram(share, edges),
        "est_precision": card.quantiles(est),
        "sample_anchored": sum(e.get("golden_passes_samples") is True for e in evidence),
    }
