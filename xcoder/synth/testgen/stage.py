"""Stage `tests`: Task parquet -> TestInput parquet (inputs only; dual verification labels them).

Three sources per task: the statement's samples, inputs the LLM writes directly (incl. edge cases),
and an LLM-written generator program run in the judge for seeds x scales (small / edge / stress).
An LLM-written validator, also run in the judge, drops inputs that break the constraints; a
validator that rejects the statement's own samples is broken and drops the task (counted). A task
where a request failed (LLM error) or the judge failed (SE) is not journaled: the stage ends with an
error and a rerun retries just those tasks.
"""

from __future__ import annotations

import collections
import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from xcoder.judge.factory import judge_from_config
from xcoder.records import RecordWriter, Task, TestInput, count_rows, iter_records
from xcoder.runs import write_json_atomic
from xcoder.synth import llm_io
from xcoder.synth.common import DropCounter, Journal, chunked, stable_hash, stream_units
from xcoder.synth.tasks.parse import ParseFailure, parse_signature, samples_of
from xcoder.synth.tasks.stage import tasks_parquet
from xcoder.synth.testgen.mutation import mutate_call_inputs
from xcoder.synth.testgen.parse import SCALES, check_call_input, parse_program, parse_prompted_inputs

log = logging.getLogger(__name__)

SCALE_TAG = {"small": "small", "edge": "edge", "stress": "stress"}


class JudgeFailure(RuntimeError):
    """The judge itself failed (SE): the unit is not journaled, so a rerun retries it."""


def stage_dir(cfg: DictConfig) -> Path:
    return Path(cfg.synth.output_dir) / "tests"


def tests_parquet(cfg: DictConfig) -> Path:
    return stage_dir(cfg) / "tests.parquet"


def run(cfg: DictConfig, judge: Any = None) -> dict[str, Any]:
    tcfg = cfg.synth.tests
    tpls = {name: llm_io.load_template(tcfg.templates[name]) for name in ("inputs", "generator", "validator")}
    params = llm_io.params_of(tcfg.params)
    journal = Journal(stage_dir(cfg) / "journal.jsonl")
    knobs = OmegaConf.to_container(tcfg, resolve=True)
    units = ((stable_hash(t.task_id, t.question, t.starter_code, {k: v.version_id for k, v in tpls.items()},
                          knobs, cfg.llm.model), t) for t in iter_records(tasks_parquet(cfg), Task))
    client = None
    own_judge = judge is None
    judge_failures = 0
    llm_failed: list[str] = []  # error text per task left unjournaled (a request failed; retried on rerun)
    bar = tqdm(total=count_rows(tasks_parquet(cfg)), desc="tests", unit="task")

    def process(todo: list[tuple[str, Task]]) -> None:
        nonlocal client, judge, judge_failures
        client = client or llm_io.make_client(cfg, stage="tests")
        judge = judge or judge_from_config(cfg)
        for batch in chunked(todo, cfg.synth.batch_size):
            n_judge, errors = _run_batch(cfg, client, judge, batch, tpls, params, journal)
            judge_failures += n_judge
            llm_failed.extend(errors)

    counter = DropCounter()
    with_tests = 0
    per_task: collections.Counter[int] = collections.Counter()  # tests per task -> tasks
    by_source: dict[str, int] = {}
    try:
        with RecordWriter(tests_parquet(cfg), TestInput) as out:
            def emit(entry: dict[str, Any]) -> None:
                nonlocal with_tests
                counter.merge(entry["drops"])
                rows = [TestInput(**r) for r in entry["records"]]
                out.write(rows)
                counter.kept += len(rows)
                with_tests += bool(rows)
                per_task[len(rows)] += 1
                for r in rows:
                    by_source[r.source] = by_source.get(r.source, 0) + 1
                bar.update(1)

            n_units, resumed = stream_units(units, journal, window=int(cfg.synth.batch_size), process=process,
                                            emit=emit, label=("tests", "tasks"))
    finally:
        if own_judge and judge is not None:
            judge.close()
        journal.close()
    bar.close()
    counts = {
        "tasks": n_units,
        "resumed_units": resumed,
        "processed_units": n_units - resumed - judge_failures - len(llm_failed),
        "judge_failures_retry_on_rerun": judge_failures,
        "llm_error_retry_on_rerun": len(llm_failed),
        **counter.as_dict(),
        "tasks_with_tests": with_tests,
        "by_source": by_source,
        "tests_per_task_histogram": dict(sorted(per_task.items())),
        "llm_usage": llm_io.usage(client) if client is not None else {},
    }
    write_json_atomic(stage_dir(cfg) / "manifest.json", counts)
    if llm_failed and judge_failures:
        log.error("tests: the judge failed (SE) on %d task(s) too; the rerun retries them as well", judge_failures)
    llm_io.raise_if_llm_errors("tests", len(llm_failed), llm_failed[-1] if llm_failed else None)
    if judge_failures:
        raise JudgeFailure(f"tests: the judge failed (SE) on {judge_failures} task(s); rerun to retry them")
    return counts


def _params_for(task: Task) -> list[str] | None:
    return parse_signature(task.starter_code)[1] if task.fn_name else None


def _run_batch(cfg, client, judge, batch, tpls, params, journal) -> tuple[int, list[str]]:
    """Journal the batch's finished tasks.

    Returns (# judge-failed tasks, errors of LLM-failed tasks), neither journaled."""
    from xcoder.judge import JudgeJob, JudgeTest, Limits, Program, Verdict

    tcfg = cfg.synth.tests
    state: dict[str, dict[str, Any]] = {}
    reqs, slots = [], []
    for key, task in batch:
        sig = _params_for(task)
        st = state[key] = {"task": task, "params": sig, "drops": {}, "cands": [], "gen": None, "val": None}
        for s in samples_of(task.question, task.style, task.starter_code):
            st["cands"].append({"input": s.input.strip("\n") + "\n" if sig is None else s.input,
                                "source": "sample", "tag": "plain", "generator": None, "expected": s.output})
        fields = {"question": task.question, "style": task.style, "kind": "call" if sig else "stdio",
                  "starter_code": task.starter_code or "", "params": ", ".join(sig or []),
                  "max_inputs": tcfg.prompted.max_inputs, "scales": ", ".join(SCALES)}
        for name, enabled in (("inputs", tcfg.prompted.enabled), ("generator", tcfg.generator.enabled),
                              ("validator", tcfg.validator.enabled)):
            if enabled:
                reqs.append(llm_io.build_request(tpls[name], fields, params,
                                                 meta={"task_id": task.task_id, "what": name}))
                slots.append((key, name))
    results = client.run(reqs, desc="test inputs") if reqs else []

    def drop(st: dict[str, Any], reason: str, n: int = 1) -> None:
        st["drops"][reason] = st["drops"].get(reason, 0) + n

    llm_failed: dict[str, str] = {}
    for (key, name), res in zip(slots, results):
        st = state[key]
        try:
            if name == "inputs":
                obj, _ = llm_io.answer_json(res)
                items, bad = parse_prompted_inputs(obj, params=st["params"], max_inputs=tcfg.prompted.max_inputs)
                if bad:
                    drop(st, "prompted_bad_item", bad)
                for text, tag in items:
                    st["cands"].append({"input": text, "source": "prompted", "tag": tag, "generator": None})
            else:
                st["gen" if name == "generator" else "val"] = parse_program(llm_io.first_answer(res).text, name)
        except ParseFailure as exc:
            if llm_io.is_llm_error(exc):  # the request failed: the task is neither judged nor journaled
                llm_failed[key] = exc.detail
                continue
            drop(st, exc.reason if exc.reason.startswith(name) else f"{name}_{exc.reason}")

    # generators: seeds x scales in the judge, output = one test input
    gen_limits = Limits(time_s=tcfg.generator.time_s, memory_mb=tcfg.generator.memory_mb,
                        output_bytes=tcfg.max_input_bytes + 1024)
    gen_jobs, gen_keys = [], []
    for key, st in state.items():
        if st["gen"] is None or key in llm_failed:
            continue
        runs = [(scale, seed) for scale in SCALES for seed in range(int(tcfg.generator.seeds[scale]))]
        st["gen_runs"] = runs
        gen_jobs.append(JudgeJob(Program(st["gen"]), [JudgeTest(input=f"{seed} {scale}\n") for scale, seed in runs],
                                 kind="stdio", limits=gen_limits))
        gen_keys.append(key)
    judge_failed: set[str] = set()
    for key, results_ in zip(gen_keys, judge.run_many(gen_jobs) if gen_jobs else []):
        st = state[key]
        gid = stable_hash(st["gen"], n=12)
        ok = 0
        for (scale, seed), r in zip(st["gen_runs"], results_):
            if r.verdict == Verdict.SE:
                judge_failed.add(key)
                continue
            if r.verdict != Verdict.AC or r.truncated:
                drop(st, "generator_run_failed")
                continue
            text = r.stdout
            try:
                if st["params"] is not None:
                    text = check_call_input(text, st["params"])
                elif not text.strip():
                    raise ParseFailure("bad_generated_input", "empty")
            except ParseFailure as exc:
                drop(st, f"generator_{exc.reason}")
                continue
            if len(text.encode()) > tcfg.max_input_bytes:
                drop(st, "input_too_large")
                continue
            ok += 1
            st["cands"].append({"input": text if st["params"] is not None else text.rstrip("\n") + "\n",
                                "source": "generator", "tag": SCALE_TAG[scale],
                                "generator": json.dumps({"id": gid, "seed": seed, "scale": scale})})
        if not ok:
            drop(st, "generator_broken")

    # type-aware mutants of the samples and prompted inputs (call-based: typed JSON arguments)
    if tcfg.mutation.enabled:
        for key, st in state.items():
            if st["params"] is None or key in llm_failed:
                continue
            seeds = [c["input"] for c in st["cands"] if c["source"] in ("sample", "prompted")]
            for text in mutate_call_inputs(seeds, int(tcfg.mutation.count), seed=f"{cfg.synth.seed}:{key}"):
                st["cands"].append({"input": text, "source": "mutated", "tag": "plain", "generator": None})

    # dedup + cap before validation (validation runs cost judge time)
    for st in state.values():
        seen, cands = set(), []
        for c in st["cands"]:
            k = c["input"].strip()
            if k in seen:
                drop(st, "duplicate_input")
                continue
            seen.add(k)
            cands.append(c)
        st["cands"] = _cap(cands, int(tcfg.max_tests), st, drop)

    # validators: each candidate input in the judge; exit 0 = valid
    val_limits = Limits(time_s=tcfg.validator.time_s, memory_mb=tcfg.validator.memory_mb)
    val_jobs, val_keys = [], []
    for key, st in state.items():
        if st["val"] is not None and st["cands"] and key not in judge_failed and key not in llm_failed:
            val_jobs.append(JudgeJob(Program(st["val"]), [JudgeTest(input=c["input"]) for c in st["cands"]],
                                     kind="stdio", limits=val_limits))
            val_keys.append(key)
    for key, results_ in zip(val_keys, judge.run_many(val_jobs) if val_jobs else []):
        st = state[key]
        if any(r.verdict == Verdict.SE for r in results_):
            judge_failed.add(key)
            continue
        valid = [r.verdict == Verdict.AC for r in results_]
        if any(not v for v, c in zip(valid, st["cands"]) if c["source"] == "sample"):
            drop(st, "validator_rejects_samples")
            st["cands"] = []
            continue
        n_bad = valid.count(False)
        if n_bad:
            drop(st, "invalid_input", n_bad)
        st["cands"] = [c for c, v in zip(st["cands"], valid) if v]
    for key, st in state.items():
        if key in llm_failed:
            log.warning("tests: task %s: a request failed (retried on rerun): %s", st["task"].task_id, llm_failed[key])
            continue
        if tcfg.validator.enabled and st["val"] is None and st["cands"]:
            # without a working validator nothing guarantees the inputs respect the constraints
            drop(st, "task_without_validator")
            st["cands"] = []
        if key in judge_failed:
            continue
        task = st["task"]
        records = [TestInput(test_id=f"{task.task_id}-{stable_hash(c['input'], n=10)}", task_id=task.task_id,
                             input=c["input"], source=c["source"], tag=c["tag"], generator=c["generator"],
                             expected=c.get("expected")).to_row()
                   for c in st["cands"]]
        if not records:
            drop(st, "task_without_tests")
        journal.add(key, records, st["drops"])
    return len(judge_failed - llm_failed.keys()), list(llm_failed.values())


def _cap(cands: list[dict[str, Any]], limit: int, st: dict[str, Any], drop) -> list[dict[str, Any]]:
    """Keep samples, then round-robin over sources/tags so edge and stress inputs survive the cap."""
    if len(cands) <= limit:
        return cands
    samples = [c for c in cands if c["source"] == "sample"]
    rest = [c for c in cands if c["source"] != "sample"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in rest:
        groups.setdefault((c["source"], c["tag"]), []).append(c)
    picked = samples[:limit]
    order = sorted(groups)
    while len(picked) < limit and any(groups[g] for g in order):
        for g in order:
            if groups[g] and len(picked) < limit:
                picked.append(groups[g].pop(0))
    drop(st, "over_max_tests", len(cands) - len(picked))
    return picked
