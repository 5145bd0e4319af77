"""Stage `tasks`: feature subtrees -> Task parquet (stage 1 analysis + stage 2 statement per style).

Units are subtrees, keyed by the subtree content, the chosen style, templates, params and model;
each batch's finished units go to the journal, so a rerun only asks for what is missing (a unit
whose request failed is not journaled: the stage ends with LLMFailure and a rerun retries it). After
all units, near-duplicate statements and benchmark-contaminated ones are removed (counted).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from omegaconf import DictConfig
from tqdm import tqdm

from xcoder.records import STYLES, FeatureSubtree, RecordWriter, Task, count_rows, iter_records, read_records
from xcoder.runs import write_json_atomic
from xcoder.synth import dedup, llm_io
from xcoder.synth.common import DropCounter, Journal, chunked, stable_hash, stream_units
from xcoder.synth.tasks.parse import ParseFailure, parse_stage2, validate_stage1

log = logging.getLogger(__name__)


def stage_dir(cfg: DictConfig) -> Path:
    return Path(cfg.synth.output_dir) / "tasks"


def tasks_parquet(cfg: DictConfig) -> Path:
    return stage_dir(cfg) / "tasks.parquet"


def choose_style(cfg: DictConfig, position: int, subtree_idx: int) -> str:
    """Seeded per subtree (so resuming or reordering never changes it); `style_cycle` forces a cycle."""
    tcfg = cfg.synth.tasks
    cycle = list(tcfg.style_cycle or [])
    if cycle:
        style = cycle[position % len(cycle)]
    else:
        weights = {k: float(v) for k, v in tcfg.style_weights.items()}
        rng = random.Random(stable_hash(cfg.synth.seed, "style", subtree_idx))
        style = rng.choices(list(weights), weights=list(weights.values()))[0]
    if style not in STYLES:
        raise ValueError(f"synth.tasks: unknown style {style!r} (known: {', '.join(STYLES)})")
    return style


def _subtrees_in_order(path: str, limit: int | None) -> Iterator[FeatureSubtree]:
    """Subtrees by `idx`, streamed when the file is already in that order (as `features.sample`
    writes it); otherwise sorted in memory, with a warning (only the idx column is read to check)."""
    idx = pq.read_table(path, columns=["idx"]).column("idx").to_pylist()
    if all(a <= b for a, b in zip(idx, idx[1:])):
        for n, sub in enumerate(iter_records(path, FeatureSubtree)):
            if limit is not None and n >= limit:
                return
            yield sub
        return
    log.warning("tasks: %s is not sorted by idx; sorting it in memory", path)
    subs = sorted(read_records(path, FeatureSubtree), key=lambda s: s.idx)
    yield from subs[:limit] if limit is not None else subs


def run(cfg: DictConfig) -> dict[str, Any]:
    tcfg = cfg.synth.tasks
    stage1_tpl = llm_io.load_template(tcfg.templates.stage1)
    style_tpls = {s: llm_io.load_template(tcfg.templates[s]) for s in STYLES}
    params = llm_io.params_of(tcfg.params)
    model = tcfg.model
    journal = Journal(stage_dir(cfg) / "journal.jsonl")
    limit = None if tcfg.limit is None else int(tcfg.limit)
    source = str(cfg.synth.features.subtrees_parquet)

    def units() -> Iterator[tuple[str, tuple[FeatureSubtree, str]]]:
        for pos, sub in enumerate(_subtrees_in_order(source, limit)):
            style = choose_style(cfg, pos, sub.idx)
            key = stable_hash(sub.features, sub.idx, style, stage1_tpl.version_id, style_tpls[style].version_id,
                              params, model, cfg.llm.model, tcfg.min_samples, tcfg.min_selected_features)
            yield key, (sub, style)

    client = None
    llm_failed: list[str] = []  # error text per unit left unjournaled (request failed; retried on rerun)
    total = count_rows(source)
    bar = tqdm(total=min(total, limit) if limit is not None else total, desc="tasks", unit="subtree")

    def process(todo: list[tuple[str, tuple[FeatureSubtree, str]]]) -> None:
        nonlocal client
        client = client or llm_io.make_client(cfg, stage="tasks")
        for batch in chunked([(k, sub, style) for k, (sub, style) in todo], cfg.synth.batch_size):
            llm_failed.extend(_run_batch(cfg, client, batch, stage1_tpl, style_tpls, params, model, journal))

    counter = DropCounter()
    styles = {s: 0 for s in STYLES}
    screen = _Screen(cfg)
    with RecordWriter(tasks_parquet(cfg), Task) as out:
        def emit(entry: dict[str, Any]) -> None:
            counter.merge(entry["drops"])
            for r in entry["records"]:
                task = Task(**r)
                reason = screen.reason(task)
                if reason:
                    counter.drop(reason, task.task_id)
                    continue
                out.write([task])
                styles[task.style] += 1
            bar.update(1)

        n_units, resumed = stream_units(units(), journal, window=int(cfg.synth.batch_size),
                                        process=process, emit=emit, label=("tasks", "subtrees"))
    bar.close()
    journal.close()
    if screen.index is not None:
        log.info("decontamination: %d benchmark statements, %d tasks removed", screen.index.docs,
                 counter.reasons.get("benchmark_contaminated", 0))
    counter.kept = sum(styles.values())
    counts = {
        "subtrees": n_units,
        "resumed_units": resumed,
        "processed_units": n_units - resumed - len(llm_failed),
        "llm_error_retry_on_rerun": len(llm_failed),
        **counter.as_dict(),
        "styles": styles,
        "llm_usage": llm_io.usage(client) if client is not None else {},
    }
    write_json_atomic(stage_dir(cfg) / "manifest.json", counts)
    llm_io.raise_if_llm_errors("tasks", len(llm_failed), llm_failed[-1] if llm_failed else None)
    return counts


def _run_batch(cfg, client, batch, stage1_tpl, style_tpls, params, model, journal) -> list[str]:
    """Journal the batch's finished units; return the errors of units whose request failed (not journaled)."""
    tcfg = cfg.synth.tasks
    llm_failed: list[str] = []
    reqs = []
    for key, sub, style in batch:
        features_json = json.dumps(json.loads(sub.features), indent=2, ensure_ascii=False)
        reqs.append(llm_io.build_request(stage1_tpl, {"features_json": features_json}, params, model=model,
                                         meta={"unit": key, "subtree_idx": sub.idx, "style": style, "step": "stage1"}))
    results1 = client.run(reqs, desc="tasks stage 1")
    stage1_ok: list[tuple[str, FeatureSubtree, str, dict[str, Any], Any]] = []
    for (key, sub, style), res in zip(batch, results1):
        try:
            obj, ans = llm_io.answer_json(res)
            stage1 = validate_stage1(obj, min_selected=tcfg.min_selected_features)
            stage1_ok.append((key, sub, style, stage1, ans))
        except ParseFailure as exc:
            _record_failure(exc, "stage1", key, sub.idx, journal, llm_failed)
    reqs2 = []
    for key, sub, style, stage1, _ in stage1_ok:
        fields = {
            "selected_features_info": json.dumps(stage1["selected_features_tree"], indent=2, ensure_ascii=False),
            "integration_strategy": stage1["integration_strategy"],
        }
        reqs2.append(llm_io.build_request(style_tpls[style], fields, params, model=model,
                                          meta={"unit": key, "subtree_idx": sub.idx, "style": style, "step": "stage2"}))
    results2 = client.run(reqs2, desc="tasks stage 2") if reqs2 else []
    for (key, sub, style, stage1, ans1), res in zip(stage1_ok, results2):
        try:
            obj, ans2 = llm_io.answer_json(res)
            parsed = parse_stage2(obj, style, min_samples=tcfg.min_samples)
        except ParseFailure as exc:
            _record_failure(exc, "stage2", key, sub.idx, journal, llm_failed)
            continue
        task = Task(
            task_id=f"t{sub.idx:06d}-{key[:10]}",
            subtree_idx=sub.idx,
            style=style,
            question=parsed.question,
            stage1=json.dumps(stage1, ensure_ascii=False),
            fn_name=parsed.fn_name,
            starter_code=parsed.starter_code,
            provenance=json.dumps({"stage1": ans1.provenance, "stage2": ans2.provenance,
                                   "samples": len(parsed.samples)}, default=str),
        )
        journal.add(key, [task.to_row()], {})
    return llm_failed


class _Screen:
    """Near-duplicate statements (MinHash LSH, the first kept) and benchmark contamination (word
    n-grams), applied to tasks in output order as they stream out: constant work per task, memory
    of a few band keys per kept task (`dedup.NearDuplicateIndex`)."""

    def __init__(self, cfg: DictConfig) -> None:
        dcfg = cfg.synth.dedup
        self.min_hits = int(dcfg.min_ngram_hits)
        self.near = (dedup.NearDuplicateIndex(threshold=dcfg.statements.threshold, num_perm=dcfg.statements.num_perm,
                                              shingle=dcfg.statements.shingle)
                     if dcfg.statements.enabled else None)
        benchmarks = list(dcfg.benchmarks or [])
        self.index = (dedup.NgramIndex((s for path in benchmarks for s in dedup.load_benchmark_statements(path)),
                                       dcfg.ngram) if benchmarks else None)

    def reason(self, task: Task) -> str:
        """Why the task is dropped, or ""."""
        if self.near is not None and not self.near.is_new(task.question):
            return "near_duplicate_statement"
        if self.index is not None and self.index.hits(task.question) >= self.min_hits:
            return "benchmark_contaminated"
        return ""


def _record_failure(exc: ParseFailure, step: str, key: str, subtree_idx: int, journal: Any,
                    llm_failed: list[str]) -> None:
    """An LLM request error is left unjournaled (a rerun retries the unit); any other parse
    failure is a counted, journaled drop named `<step>_<reason>`."""
    if llm_io.is_llm_error(exc):
        log.warning("tasks: subtree %d: %s request failed (retried on rerun): %s", subtree_idx,
                    step.replace("stage", "stage "), exc.detail)
        llm_failed.append(exc.detail)
        return
    reason = exc.reason if exc.reason.startswith(step) else f"{step}_{exc.reason}"
    journal.add(key, [], {reason: 1}, detail=exc.detail)
