"""Stage `verify`: solutions x test inputs in the judge -> Verification parquet.

Every candidate runs on every input once (output captured, no expected output); the decision rule
(`synth.verify.preset`: `consensus`, the default, or `paper`) reuses those runs. Tests with a known
output (statement samples, imported truths) anchor the vote. A task's content never stops the
stage: a statement that cannot be parsed is verified without its samples (counted), and a task
that cannot be verified at all is a rejected record with its reason. With `cluster=ray` the judge batches fan
out over the cluster's nodes (`xcoder.judge.ray_fanout.RayJudgePool`); locally the judge's own
worker pool runs them.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from xcoder.judge.factory import judge_from_config
from xcoder.records import RecordWriter, Solution, Task, TestInput, Verification, count_rows, iter_records
from xcoder.runs import write_json_atomic
from xcoder.synth.common import DropCounter, GroupedReader, Journal, chunked, stable_hash, stream_units
from xcoder.synth.solutions.stage import solutions_parquet
from xcoder.synth.tasks.parse import ParseFailure, samples_of
from xcoder.synth.tasks.stage import tasks_parquet
from xcoder.synth.testgen.stage import JudgeFailure, tests_parquet
from xcoder.synth.verify.calibration import estimated_precision
from xcoder.synth.verify.core import (
    ConsensusConfig,
    GoldenConfig,
    TaskVerdict,
    VoteConfig,
    normalize_output,
    output_key,
    verify_outputs,
)

log = logging.getLogger(__name__)


def stage_dir(cfg: DictConfig) -> Path:
    return Path(cfg.synth.output_dir) / "verify"


def verify_parquet(cfg: DictConfig) -> Path:
    return stage_dir(cfg) / "verification.parquet"


def vote_config(cfg: DictConfig) -> VoteConfig:
    v = cfg.synth.verify.vote
    return VoteConfig(min_support=int(v.min_support), min_agreement=float(v.min_agreement),
                      tie_break=str(v.tie_break), normalize=str(v.normalize), seed=int(cfg.synth.seed))


def golden_config(cfg: DictConfig) -> GoldenConfig:
    g = cfg.synth.verify.golden
    return GoldenConfig(
        weights={k: float(w) for k, w in g.weights.items()},
        select_fraction=float(g.select_fraction), min_select_score=float(g.min_select_score),
        min_holdout_pass=float(g.min_holdout_pass), drop_golden_disagreements=bool(g.drop_golden_disagreements),
        min_tests=int(g.min_tests), empty_call_outputs=tuple(g.empty_call_outputs),
        max_empty_fraction=float(g.max_empty_fraction), reject_constant_outputs=bool(g.reject_constant_outputs),
        seed=int(cfg.synth.seed),
    )


PRESETS = ("consensus", "paper")


def consensus_config(cfg: DictConfig) -> ConsensusConfig | None:
    """The consensus rule's thresholds, or None when `synth.verify.preset=paper`."""
    preset = str(cfg.synth.verify.preset)
    if preset not in PRESETS:
        raise ValueError(f"synth.verify.preset={preset!r}: choose one of {list(PRESETS)}")
    if preset == "paper":
        return None
    c = cfg.synth.verify.consensus
    return ConsensusConfig(anchor_samples=bool(c.anchor_samples), min_cluster=int(c.min_cluster),
                           min_cluster_share=float(c.min_cluster_share), min_margin=float(c.min_margin),
                           max_golden_failed=float(c.max_golden_failed))


def run(cfg: DictConfig, judge: Any = None) -> dict[str, Any]:
    vcfg = cfg.synth.verify
    consensus_config(cfg)  # a bad preset fails before any judge work
    knobs = OmegaConf.to_container(vcfg, resolve=True)
    limits_cfg = OmegaConf.to_container(cfg.judge.limits.voting, resolve=True)
    journal = Journal(stage_dir(cfg) / "journal.jsonl")
    sols = GroupedReader(iter_records(solutions_parquet(cfg), Solution), key=lambda s: s.task_id)
    tins = GroupedReader(iter_records(tests_parquet(cfg), TestInput), key=lambda t: t.task_id)

    def units() -> Iterator[tuple[str, tuple[Task, list[Solution], list[TestInput]]]]:
        for task in iter_records(tasks_parquet(cfg), Task):
            cands = sols.take(task.task_id)[: int(vcfg.max_candidates)]
            tests = tins.take(task.task_id)
            key = stable_hash(task.task_id, [(c.solution_id, c.code) for c in cands],
                              [(t.test_id, t.input, t.expected) for t in tests], knobs, limits_cfg, cfg.synth.seed)
            yield key, (task, cands, tests)

    own_judge = judge is None
    judge_failures = 0
    bar = tqdm(total=count_rows(tasks_parquet(cfg)), desc="verify", unit="task")

    def process(todo: list[tuple[str, tuple[Task, list[Solution], list[TestInput]]]]) -> None:
        nonlocal judge, judge_failures
        judge = judge or judge_from_config(cfg)
        flat = [(key, task, cands, tests) for key, (task, cands, tests) in todo]
        for batch in chunked(flat, int(vcfg.tasks_per_judge_batch)):
            judge_failures += _run_batch(cfg, judge, batch, journal)

    counter = DropCounter()
    test_drops: collections.Counter[str] = collections.Counter()
    try:
        with RecordWriter(verify_parquet(cfg), Verification, row_group_rows=256) as out:
            def emit(entry: dict[str, Any]) -> None:
                for r in entry["records"]:
                    out.write([Verification(**r)])
                    if r["status"] == "rejected":
                        counter.drop(r["reason"])
                    else:
                        counter.kept += 1
                test_drops.update(entry.get("test_drops", {}))
                bar.update(1)

            # a window holds at least one judge batch, so run_many calls stay as large as configured
            window = max(int(cfg.synth.batch_size), int(vcfg.tasks_per_judge_batch))
            n_units, resumed = stream_units(units(), journal, window=window,
                                            process=process, emit=emit, label=("verify", "tasks"))
    finally:
        if own_judge and judge is not None:
            judge.close()
        journal.close()
    bar.close()
    counts = {
        "tasks": n_units,
        "resumed_units": resumed,
        "processed_units": n_units - resumed - judge_failures,
        "judge_failures_retry_on_rerun": judge_failures,
        **counter.as_dict(),
        "test_drop_reasons": dict(sorted(test_drops.items())),
    }
    if hasattr(judge, "jobs_per_node"):  # cluster=ray: how the judge work spread over the nodes
        counts["judge_jobs_per_node"] = judge.jobs_per_node()
    write_json_atomic(stage_dir(cfg) / "manifest.json", counts)
    if judge_failures:
        raise JudgeFailure(f"verify: the judge failed (SE) on {judge_failures} task(s); rerun to retry them")
    return counts


def _run_batch(cfg: DictConfig, judge: Any, batch: list[Any], journal: Journal) -> int:
    from xcoder.judge import JudgeJob, JudgeTest, Program, Verdict, profile_limits

    limits = profile_limits(cfg.judge, "voting")
    jobs, owners = [], []
    for key, task, cands, tests in batch:
        kind = "call" if task.fn_name else "stdio"
        for c in cands:
            jobs.append(JudgeJob(Program(c.code, language=c.language), [JudgeTest(input=t.input) for t in tests],
                                 kind=kind, fn_name=task.fn_name, limits=limits))
            owners.append(key)
    results = judge.run_many(jobs) if jobs else []
    by_key: dict[str, list[list[Any]]] = collections.defaultdict(list)
    for key, res in zip(owners, results):
        by_key[key].append(res)
    failed = 0
    for key, task, cands, tests in batch:
        runs = by_key.get(key, [])
        if any(r.verdict == Verdict.SE for row in runs for r in row):
            log.error("verify: judge SE on task %s; not journaled (retried on rerun)", task.task_id)
            failed += 1
            continue
        outputs = [[r.stdout if r.verdict == Verdict.AC and not r.truncated else None for r in row] for row in runs]
        verdict, test_drops = verify_task(cfg, task, cands, tests, outputs)
        journal.add(key, [verdict.to_row()], {}, test_drops=test_drops)
    return failed


def verify_task(cfg: DictConfig, task: Task, cands: list[Solution], tests: list[TestInput],
                outputs: list[list[str | None]]) -> tuple[Verification, dict[str, int]]:
    """One task's Verification record (+ test-level drop counts) from its candidates' outputs.
    Never raises on the task's content: what cannot be verified is a rejected record with its reason."""
    kind = "call" if task.fn_name else "stdio"
    counts: dict[str, int] = {}
    try:
        known, unparsed = known_outputs(task, tests)
        if unparsed:
            counts["statement_unparsed"] = 1
        res: TaskVerdict = verify_outputs(
            task_id=task.task_id, kind=kind, candidate_ids=[c.solution_id for c in cands],
            tests=[{"test_id": t.test_id, "input": t.input, "tag": t.tag, "source": t.source,
                    **({"expected": known[t.test_id]} if t.test_id in known else {})} for t in tests],
            outputs=outputs, vote_cfg=vote_config(cfg), golden_cfg=golden_config(cfg),
            consensus_cfg=consensus_config(cfg))
    except (ValueError, TypeError, KeyError) as exc:  # content the rules cannot read: a counted drop
        log.warning("verify: task %s cannot be verified: %s: %s", task.task_id, type(exc).__name__, exc)
        counts["unverifiable"] = 1
        rec = Verification(task_id=task.task_id, status="rejected", reason="unverifiable", kind=kind, tests="[]",
                           evidence=json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:300]}"}))
        return rec, counts
    counts.update(res.counts)
    status, reason = res.status, res.reason
    mismatched = sample_mismatches(kind, res.tests, known, cfg.synth.verify.vote.normalize)
    if mismatched:
        counts["sample_label_mismatch"] = mismatched
        if status == "kept" and cfg.synth.verify.reject_sample_mismatch:
            status, reason = "rejected", "sample_mismatch"
    rec = Verification(
        task_id=task.task_id, status=status, reason=reason, kind=kind,
        tests=json.dumps(res.tests, ensure_ascii=False),
        golden_solution_id=cands[res.golden_index].solution_id if res.golden_index is not None else None,
        golden_select_score=float(res.golden_select_score), golden_holdout_pass=float(res.golden_holdout_pass),
        votes=json.dumps(res.votes), pass_matrix=json.dumps(res.pass_matrix),
        evidence=json.dumps({"preset": str(cfg.synth.verify.preset), **res.evidence,
                             "est_precision": estimated_precision(res.evidence) if status == "kept" else None}),
    )
    return rec, counts


def known_outputs(task: Task, tests: list[TestInput]) -> tuple[dict[str, str], bool]:
    """test_id -> known output: a test's own `expected`, else (for `sample` tests written before
    that field existed, or by hand) the statement's sample output for the same input. The bool says
    the statement had to be parsed and could not be (its samples then anchor nothing)."""
    known = {t.test_id: t.expected for t in tests if t.expected is not None}
    pending = [t for t in tests if t.source == "sample" and t.expected is None]
    if not pending:
        return known, False
    try:
        stated = {s.input.strip(): s.output for s in samples_of(task.question, task.style, task.starter_code)}
    except (ParseFailure, ValueError, TypeError, KeyError):
        return known, True
    known.update({t.test_id: stated[t.input.strip()] for t in pending if t.input.strip() in stated})
    return known, False


def sample_mismatches(kind: str, tests: list[dict[str, Any]], known: dict[str, str], normalize: str) -> int:
    """Final tests with a known output (statement samples) whose label differs from it under the
    grading equality: the statement (or the vote) is wrong about its own example."""
    def key(text: str) -> str | None:
        return output_key(normalize_output(text, kind, normalize), kind, normalize)

    return sum(1 for t in tests if t["test_id"] in known and key(known[t["test_id"]]) != key(t["output"]))
