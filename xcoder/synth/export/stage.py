"""Stage `export`: kept tasks -> SFT parquet + RL parquet (verl schema) + data card.

Export is a pure function of the earlier stages' files, so rerunning it is cheap and idempotent;
files are written atomically, and only when their content changed (a rerun leaves identical
parquet files and data card untouched, so sft/rl see nothing new).
"""

from __future__ import annotations

import array
import collections
import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from xcoder.records import (
    STYLES,
    FeatureSubtree,
    RecordWriter,
    RLRow,
    SFTRow,
    Solution,
    Task,
    Verification,
    iter_records,
)
from xcoder.runs import write_json_atomic
from xcoder.synth import llm_io
from xcoder.synth.common import DropCounter, GroupedReader
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
    """Stream kept tasks (verification order = task order) into the SFT and RL parquet files;
    statistics for the data card are gathered on the way (`CardStats`), never the rows themselves."""
    ecfg = cfg.synth.export
    if ecfg.sft.solutions not in ("passing", "golden"):
        raise ValueError(f"synth.export.sft.solutions: unknown {ecfg.sft.solutions!r} (passing | golden)")
    if ecfg.rl.order not in ("none", "pass_rate_desc", "pass_rate_asc"):
        raise ValueError(f"synth.export.rl.order: unknown {ecfg.rl.order!r} (none | pass_rate_desc | pass_rate_asc)")
    tpl = llm_io.load_template(cfg.synth.solutions.template)
    buckets = {k: float(x) for k, x in ecfg.rl.buckets.items()}
    sols = GroupedReader(iter_records(solutions_parquet(cfg), Solution), key=lambda s: s.task_id)
    tasks = GroupedReader(iter_records(tasks_parquet(cfg), Task), key=lambda t: t.task_id)
    stats = CardStats(cfg)
    sft_drops = DropCounter()
    seen_code: set[int] = set()  # 8-byte fingerprints of exported solutions (exact-duplicate removal)
    rates: collections.Counter[float] = collections.Counter()
    n_kept = 0
    rl_path = Path(cfg.synth.rl_parquet)
    rl_unordered = rl_path.with_name(f".{rl_path.name}.unordered") if ecfg.rl.order != "none" else rl_path
    sft_out = RecordWriter(cfg.synth.sft_parquet, SFTRow, keep_identical=True)
    rl_out = RecordWriter(rl_unordered, RLRow, keep_identical=ecfg.rl.order == "none")
    try:
        for v in iter_records(verify_parquet(cfg), Verification):
            stats.add_verification(v)
            task_rows = tasks.take(v.task_id)
            task_sols = sols.take(v.task_id)
            if v.status != "kept" or not task_rows:
                continue
            task = task_rows[0]
            stats.add_kept(v, task)
            prefix = prompt_messages(tpl, task, system=bool(ecfg.sft.system_prompt))
            passing = build.passing_solutions(v, task_sols)
            candidates = passing if ecfg.sft.solutions == "passing" else [
                s for s in passing if s.solution_id == v.golden_solution_id]
            sft_drops.merge({"failed_final_tests": len(task_sols) - len(passing)})
            taken = 0
            for sol in candidates:
                fp = int(code_fingerprint(sol.code)[:16], 16)
                if ecfg.dedup_solutions and fp in seen_code:
                    sft_drops.drop("duplicate_solution")
                    continue
                if taken >= int(ecfg.sft.max_per_task):
                    sft_drops.drop("over_max_per_task")
                    continue
                seen_code.add(fp)
                row = build.sft_row(task, sol, prefix, build.selected_features(task))
                sft_out.write([row])
                stats.add_sft(row)
                taken += 1
            rate = build.teacher_pass_rate(v)
            prompt = prompt_messages(tpl, task, system=bool(ecfg.rl.system_prompt))
            rl_out.write([build.rl_row(task, v, prompt, index=n_kept, data_source=ecfg.rl.data_source,
                                       vote_normalize=str(cfg.synth.verify.vote.normalize), pass_rate=rate,
                                       difficulty=build.difficulty_bucket(rate, buckets))])
            rates[rate] += 1
            n_kept += 1
        sft_changed = sft_out.close()
        rl_changed = rl_out.close()
    except BaseException:
        sft_out.abort()
        rl_out.abort()
        raise
    if ecfg.rl.order != "none":
        rl_changed = _write_ordered(rl_unordered, rl_path, rates, descending=ecfg.rl.order == "pass_rate_desc")
    sft_drops.kept = sft_out.rows
    counts = {"kept_tasks": n_kept, "sft_rows": sft_out.rows, "rl_rows": n_kept,
              "sft": sft_drops.as_dict(), "rl_order": ecfg.rl.order}
    write_json_if_changed(stage_dir(cfg) / "manifest.json", counts)
    card_md = stage_dir(cfg) / "DATA_CARD.md"
    if not (sft_changed or rl_changed) and card_md.is_file() and (stage_dir(cfg) / "data_card.json").is_file():
        # the card describes how THIS data was made (LLM usage, units processed): a rerun that
        # produced identical parquet must not replace it with the rerun's "0 processed, no usage"
        log.info("data unchanged; data card %s kept", card_md)
        data_card = str(card_md)
    else:
        data_card = build_card(cfg, stats, counts)
    counts["data_card"] = data_card
    return counts


def _write_ordered(unordered: Path, path: Path, rates: collections.Counter[float], *, descending: bool) -> bool:
    """The RL rows sorted by teacher pass rate (stable), without holding them: one streamed pass over
    the unordered file per distinct rate (pass rates are k/n fractions, so there are only a few)."""
    out = RecordWriter(path, RLRow, keep_identical=True)
    try:
        for rate in sorted(rates, reverse=descending):
            out.write(r for r in iter_records(unordered, RLRow) if r.extra_info["pass_rate"] == rate)
        changed = out.close()
    except BaseException:
        out.abort()
        raise
    finally:
        unordered.unlink(missing_ok=True)
    return changed


def write_records_if_changed(path: str | Path, rows: list[Any], record_type: type) -> bool:
    """Write the parquet atomically, but leave an existing file with identical bytes untouched.

    Why: downstream stages (sft, rl) key their work on these files; a rerun of an unchanged
    pipeline must not hand them a "new" file (new mtime) and so trigger retraining.
    Returns True when the file was (re)written.
    """
    with RecordWriter(path, record_type, keep_identical=True) as out:
        out.write(rows)
    return out.changed


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
    out_dir = Path(cfg.synth.features.output_dir) if stage == "features" else Path(cfg.synth.output_dir) / stage
    path = out_dir / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


class CardStats:
    """The data card's statistics, gathered as verification records and exported rows stream past:
    counters, histograms and compact numeric arrays (a few bytes per task), never the rows."""

    AGREEMENT_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    TOKEN_EDGES = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 10**9)
    SHARE_EDGES = (0.0, 0.25, 0.5, 0.625, 0.75, 0.875, 1.0)

    def __init__(self, cfg: DictConfig) -> None:
        self.subtree_leaves: dict[int, int] = {}
        sub_path = Path(cfg.synth.features.subtrees_parquet)
        if sub_path.exists():
            for s in iter_records(sub_path, FeatureSubtree):
                self.subtree_leaves[s.idx] = len(card.leaves(json.loads(s.features))) or s.leaf_count
        self.agreement = card.Histogram(self.AGREEMENT_EDGES)
        self.agreement_all = card.Histogram(self.AGREEMENT_EDGES)
        self.share_hist = card.Histogram(self.SHARE_EDGES)
        self.tokens_hist = card.Histogram(self.TOKEN_EDGES)
        self.per_task: collections.Counter[int] = collections.Counter()
        self.by_source: collections.Counter[str] = collections.Counter()
        self.by_tag: collections.Counter[str] = collections.Counter()
        self.styles_kept: collections.Counter[str] = collections.Counter()
        self.styles_sft: collections.Counter[str] = collections.Counter()
        self.features: set[str] = set()
        self.final_tests = 0
        self.sample_anchored = 0
        self.arrays = {name: array.array("d") for name in ("holdout", "select", "question_chars", "selected",
                                                            "share", "sft_tokens", "agreeing_share", "est")}

    def add_verification(self, v: Verification) -> None:
        for x in json.loads(v.votes):
            if x.get("successes"):
                self.agreement_all.add(x["agreement"])

    def add_kept(self, v: Verification, task: Task) -> None:
        tests = json.loads(v.tests)
        self.per_task[len(tests)] += 1
        self.final_tests += len(tests)
        for t in tests:
            self.agreement.add(t["agreement"])
            self.by_source[t.get("source", "")] += 1
            self.by_tag[t.get("tag", "")] += 1
        a = self.arrays
        a["holdout"].append(v.golden_holdout_pass)
        a["select"].append(v.golden_select_score)
        a["question_chars"].append(len(task.question))
        selected = card.leaves(json.loads(task.stage1).get("selected_features_tree", {}))
        self.features.update(selected)
        a["selected"].append(len(selected))
        if self.subtree_leaves.get(task.subtree_idx):
            a["share"].append(round(len(selected) / self.subtree_leaves[task.subtree_idx], 3))
        self.styles_kept[task.style] += 1
        evidence = json.loads(v.evidence or "{}")
        if "full_agreement_share" in evidence:
            a["agreeing_share"].append(evidence["full_agreement_share"])
            self.share_hist.add(evidence["full_agreement_share"])
        if evidence.get("est_precision") is not None:
            a["est"].append(evidence["est_precision"])
        self.sample_anchored += evidence.get("golden_passes_samples") is True

    def add_sft(self, row: SFTRow) -> None:
        self.arrays["sft_tokens"].append(row.num_tokens)
        self.tokens_hist.add(row.num_tokens)
        self.styles_sft[row.style] += 1


def build_card(cfg: DictConfig, stats: CardStats, export_counts: dict[str, Any]) -> str:
    out_dir = stage_dir(cfg)
    stages = {s: _manifest(cfg, s) for s in STAGE_ORDER[:-1]}
    run_manifest = Path(cfg.synth.output_dir) / "manifest.json"
    if not stages["features"] and run_manifest.exists():  # the sampler reports through the run manifest
        sampled = json.loads(run_manifest.read_text()).get("stages", {}).get("features.sample", {})
        if sampled:
            stages["features"] = {"kept": sampled.get("sampled"),
                                  "dropped": sum((sampled.get("rejected") or {}).values()),
                                  "drop_reasons": sampled.get("rejected") or {}}
    stages = {s: m for s, m in stages.items() if m}
    stages["export (SFT solutions)"] = export_counts["sft"]
    a = stats.arrays
    task_drops = stages.get("tasks", {}).get("drop_reasons") or {}
    usage: dict[str, Any] = {}  # client.usage() is keyed by the stage's accounting bucket already
    for m in stages.values():
        if isinstance(m, dict) and isinstance(m.get("llm_usage"), dict):
            usage.update(m["llm_usage"])
    task_styles = (stages.get("tasks") or {}).get("styles") or {}
    per_task = [n for n, c in sorted(stats.per_task.items()) for _ in range(c)]
    data = {
        "run": cfg.run.name,
        "outputs": {"sft_parquet": str(cfg.synth.sft_parquet), "rl_parquet": str(cfg.synth.rl_parquet),
                    "sft_rows": export_counts["sft_rows"], "rl_rows": export_counts["rl_rows"]},
        "stages": stages,
        "styles": {
            "tasks": {s: int(task_styles.get(s, 0)) for s in STYLES},
            "kept_tasks": {s: stats.styles_kept.get(s, 0) for s in STYLES},
            "sft_rows": {s: stats.styles_sft.get(s, 0) for s in STYLES},
        },
        "feature_coverage": {
            "distinct_selected_features": len(stats.features),
            "selected_per_task": card.quantiles([int(x) for x in a["selected"]]),
            "selected_share": card.quantiles(list(a["share"])),
        },
        "tests": {
            "final_tests": stats.final_tests,
            "per_task": card.quantiles(per_task),
            "per_task_histogram": dict(sorted(stats.per_task.items())),
            "by_source": dict(stats.by_source),
            "by_tag": dict(stats.by_tag),
            "test_drop_reasons": stages.get("verify", {}).get("test_drop_reasons", {}),
            "agreement_histogram": stats.agreement.as_dict(),
            "agreement_histogram_all": stats.agreement_all.as_dict(),
        },
        "verification": {
            "preset": str(cfg.synth.verify.preset),
            "agreeing_share": card.quantiles(list(a["agreeing_share"])),
            "agreeing_share_histogram": stats.share_hist.as_dict(),
            "est_precision": card.quantiles(list(a["est"])),
            "sample_anchored": stats.sample_anchored,
        },
        "golden": {"holdout_pass": card.quantiles(list(a["holdout"])),
                   "select_score": card.quantiles(list(a["select"]))},
        "lengths": {
            "sft_tokens": card.quantiles([int(x) for x in a["sft_tokens"]]),
            "sft_tokens_histogram": stats.tokens_hist.as_dict(),
            "question_chars": card.quantiles([int(x) for x in a["question_chars"]]),
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
