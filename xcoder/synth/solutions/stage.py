"""Stage `solutions`: Task parquet -> Solution parquet (n candidates per task from each teacher).

One request per candidate (seed = base seed + candidate index), so each candidate is cached and
resumable on its own. Kept: the reasoning and the final answer; filtered (counted): failed calls,
truncation, no closed final ```python block, code that does not parse, token-length bounds. A task
where any candidate's request failed (LLM error) is not journaled: the stage ends with LLMFailure and
a rerun retries it (its finished candidates come from the LLM cache).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm import tqdm

from xcoder.records import RecordWriter, Solution, Task, count_rows, iter_records
from xcoder.runs import write_json_atomic
from xcoder.synth import llm_io
from xcoder.synth.common import DropCounter, Journal, chunked, stable_hash, stream_units
from xcoder.synth.solutions.parse import check_length, estimate_tokens, final_code
from xcoder.synth.tasks.parse import ParseFailure
from xcoder.synth.tasks.stage import tasks_parquet

log = logging.getLogger(__name__)


def stage_dir(cfg: DictConfig) -> Path:
    return Path(cfg.synth.output_dir) / "solutions"


def solutions_parquet(cfg: DictConfig) -> Path:
    return stage_dir(cfg) / "solutions.parquet"


def teachers(cfg: DictConfig) -> list[dict[str, Any]]:
    out = []
    for t in cfg.synth.solutions.teachers:
        if not t.get("name"):
            raise ValueError("synth.solutions.teachers: every teacher needs a name")
        out.append({"name": str(t.name), "model": t.get("model") or None, "n": int(t.n)})
    if len({t["name"] for t in out}) != len(out):
        raise ValueError("synth.solutions.teachers: teacher names must be unique")
    return out


def run(cfg: DictConfig) -> dict[str, Any]:
    scfg = cfg.synth.solutions
    tpl = llm_io.load_template(scfg.template)
    params = llm_io.params_of(scfg.params)
    teacher_list = teachers(cfg)
    journal = Journal(stage_dir(cfg) / "journal.jsonl")
    units = ((stable_hash(t.task_id, t.question, tpl.version_id, params, teacher_list, cfg.llm.model,
                          scfg.min_tokens, scfg.max_tokens, scfg.require_single_block), t)
             for t in iter_records(tasks_parquet(cfg), Task))
    client = None
    llm_failed: list[str] = []  # error text per task left unjournaled (a request failed; retried on rerun)
    bar = tqdm(total=count_rows(tasks_parquet(cfg)), desc="solutions", unit="task")

    def process(todo: list[tuple[str, Task]]) -> None:
        nonlocal client
        client = client or llm_io.make_client(cfg, stage="solutions")
        for batch in chunked(todo, cfg.synth.batch_size):
            llm_failed.extend(_run_batch(cfg, client, batch, tpl, params, teacher_list, journal))

    counter = DropCounter()
    tasks_with = 0
    by_teacher = {t["name"]: 0 for t in teacher_list}
    with RecordWriter(solutions_parquet(cfg), Solution) as out:
        def emit(entry: dict[str, Any]) -> None:
            counter.merge(entry["drops"])
            sols = [Solution(**r) for r in entry["records"]]
            out.write(sols)
            nonlocal tasks_with
            tasks_with += bool(sols)
            for sol in sols:
                by_teacher[sol.teacher] = by_teacher.get(sol.teacher, 0) + 1
            bar.update(1)

        n_units, resumed = stream_units(units, journal, window=int(cfg.synth.batch_size),
                                        process=process, emit=emit, label=("solutions", "tasks"))
    bar.close()
    journal.close()
    counter.kept = sum(by_teacher.values())
    counts = {
        "tasks": n_units,
        "resumed_units": resumed,
        "processed_units": n_units - resumed - len(llm_failed),
        "llm_error_retry_on_rerun": len(llm_failed),
        "requested": n_units * sum(t["n"] for t in teacher_list),
        **counter.as_dict(),
        "tasks_without_solutions": n_units - tasks_with,
        "by_teacher": by_teacher,
        "llm_usage": llm_io.usage(client) if client is not None else {},
    }
    write_json_atomic(stage_dir(cfg) / "manifest.json", counts)
    llm_io.raise_if_llm_errors("solutions", len(llm_failed), llm_failed[-1] if llm_failed else None)
    return counts


def _run_batch(cfg, client, batch, tpl, params, teacher_list, journal) -> list[str]:
    """Journal the batch's finished tasks; return the errors of tasks with a failed request (not journaled)."""
    scfg = cfg.synth.solutions
    reqs, slots = [], []
    for key, task in batch:
        fields = {"question": task.question, "starter_code": task.starter_code or "", "style": task.style}
        offset = 0  # teachers sharing a model must not send identical requests: seeds run on across teachers
        for teacher in teacher_list:
            for i in range(teacher["n"]):
                p = dict(params, n=1, seed=int(params.get("seed", cfg.synth.seed)) + offset + i)
                reqs.append(llm_io.build_request(tpl, fields, p, model=teacher["model"],
                                                 meta={"task_id": task.task_id, "teacher": teacher["name"], "i": i}))
                slots.append((key, task, teacher, i))
            offset += teacher["n"]
    results = client.run(reqs, desc="solutions")
    by_unit: dict[str, tuple[list[dict[str, Any]], dict[str, int]]] = {key: ([], {}) for key, _ in batch}
    llm_failed: dict[str, str] = {}
    for (key, task, teacher, i), res in zip(slots, results):
        records, drops = by_unit[key]
        try:
            ans = llm_io.first_answer(res)
            code = final_code(ans.text, require_single_block=scfg.require_single_block)
            num_tokens = llm_io.completion_tokens(ans.provenance)
            source = "endpoint"
            if num_tokens is None:
                num_tokens, source = estimate_tokens(ans.reasoning + "\n" + ans.text), "estimate"
            check_length(num_tokens, min_tokens=scfg.min_tokens, max_tokens=scfg.max_tokens)
        except ParseFailure as exc:
            if llm_io.is_llm_error(exc):
                llm_failed[key] = exc.detail
                continue
            drops[exc.reason] = drops.get(exc.reason, 0) + 1
            continue
        records.append(Solution(
            solution_id=f"{task.task_id}-{teacher['name']}-{i}",
            task_id=task.task_id,
            teacher=teacher["name"],
            response=ans.text,
            reasoning=ans.reasoning,
            code=code,
            num_tokens=int(num_tokens),
            provenance=json.dumps({**ans.provenance, "num_tokens_source": source}, default=str),
        ).to_row())
    for key, task in batch:
        if key in llm_failed:
            log.warning("solutions: task %s: a request failed (retried on rerun): %s", task.task_id, llm_failed[key])
            continue
        records, drops = by_unit[key]
        journal.add(key, records, drops)
    return list(llm_failed.values())
