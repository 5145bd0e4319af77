"""The eval stage: load -> window -> prompt -> generate (resumable) -> extract -> grade -> score ->
report. `run_eval` is what `xcoder eval` and `eval/run_eval.sh` call; tests call it directly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xcoder.eval import lcb_data
from xcoder.eval.benchmarks import load_benchmark
from xcoder.eval.generation import GenerationStore, SamplingConfig, generate_all, generation_key
from xcoder.eval.grading import GradeCache, GradingConfig, grade_programs
from xcoder.eval.metrics import breakdown, score
from xcoder.eval.problems import Problem
from xcoder.eval.prompts import EvalPrompt, code_from_output
from xcoder.eval.report import header_lines, write_reports
from xcoder.eval.windows import window_summary, windows_from_config
from xcoder.runs import model_identity

log = logging.getLogger(__name__)


def _windows_cfg(node: Any) -> Any:
    """`eval.windows` as plain data; `eval.windows=null` = one window over all problems."""
    return None if node is None else OmegaConf.to_container(node, resolve=True)


def _backend_model(cfg: DictConfig, model_path: str) -> str:
    backend = cfg.eval.generation.backend
    if backend == "openai":
        return f"openai:{cfg.eval.openai.model or model_path}"
    if backend == "reference":
        return f"reference:{cfg.eval.reference.solutions_path}"
    return backend


def _source_desc(b: DictConfig) -> str:
    if b.name != "livecodebench":
        return f"{b.local_path or 'package data'}"
    if b.source == "hub":
        files = ", ".join(lcb_data.release_files(b.release_tag))
        return f"hub {lcb_data.HUB_REPO}@{b.hub_revision} {b.release_tag} ({files})"
    return f"local {b.local_path}"


def plan(cfg: DictConfig) -> dict[str, Any]:
    """What a run would do, without loading data or models (for --dry-run)."""
    e = cfg.eval
    windows = windows_from_config(_windows_cfg(e.windows))
    sampling = SamplingConfig.from_config(e.sampling)
    prompt = EvalPrompt.load(e.prompt.template)
    backend: dict[str, Any] = {"backend": e.generation.backend, "mode": e.generation.mode}
    if e.generation.backend == "vllm":
        from xcoder.eval.backends.vllm import VLLMBackend

        backend |= VLLMBackend(str(e.model_path), lazy=True, **dict(e.vllm)).plan()
    elif e.generation.backend == "openai":
        backend |= {"model": e.openai.model or str(e.model_path), "endpoints": list(cfg.llm.endpoints),
                    "llm_mode": cfg.llm.mode}
    elif e.generation.backend == "hf":
        backend |= dict(e.hf)
    return {
        "model_path": str(e.model_path), "output_dir": str(e.output_dir),
        "benchmark": _source_desc(e.benchmark), "trust_pickle": bool(e.benchmark.trust_pickle),
        "windows": [w.describe() for w in windows], "prompt": prompt.version_id,
        "sampling": dataclasses.asdict(sampling), "generation": backend,
        "grading": dataclasses.asdict(GradingConfig.from_config(e.grading)),
    }


def run_eval(cfg: DictConfig, *, judge: Any = None) -> dict[str, Any]:
    """Run the stage; returns the results dict (also written to `eval.output_dir`)."""
    e = cfg.eval
    out_dir = Path(e.output_dir)
    model_path = str(e.model_path)
    windows = windows_from_config(_windows_cfg(e.windows))
    sampling = SamplingConfig.from_config(e.sampling)
    prompt = EvalPrompt.load(e.prompt.template)
    grading = GradingConfig.from_config(e.grading)
    if e.generation.mode not in ("generate", "score_only"):
        raise ValueError(f"eval.generation.mode must be generate or score_only, got {e.generation.mode!r}")

    log.info("eval %s: prompt %s; sampling %s; grading %s", model_path, prompt.version_id,
             dataclasses.asdict(sampling), dataclasses.asdict(grading))
    problems = load_benchmark(OmegaConf.to_container(e.benchmark, resolve=True), windows)
    by_window = {w.name: w.select(problems) for w in windows}
    for w in windows:
        s = window_summary(w, by_window[w.name])
        log.info("window %s: %d problems %s", w.describe(), s["problems"], s["difficulty"])

    # the key holds what the model IS (resolved symlinks, config hash, weight files' size/mtime), not
    # just its path: a checkpoint retrained at the same path must be regenerated, never scored stale
    identity = model_identity(model_path)
    key = generation_key(model_path, _backend_model(cfg, model_path), prompt, sampling, model_identity=identity)
    store = GenerationStore(out_dir / "generations" / f"{key}.jsonl", {
        "model_path": model_path, "model_identity": identity, "backend_model": _backend_model(cfg, model_path),
        "prompt": prompt.version_id, "sampling": sampling.without_n()})

    def factory() -> Any:
        from xcoder.eval.backends import make_backend

        return make_backend(cfg, model_path=model_path, template_version=prompt.version_id)

    samples = generate_all(problems, prompt, factory if e.generation.mode == "generate" else None, sampling, store)
    items = [(p, s.index, code_from_output(s.text, strip_reasoning=bool(e.prompt.strip_think)))
             for p in problems for s in samples[p.problem_id]]
    cache = GradeCache(out_dir / "grades" / f"{key}-{grading.key()}.jsonl")
    own_judge = judge is None
    if own_judge:
        from xcoder.judge import judge_from_config

        judge = judge_from_config(cfg, mode="local")  # eval grades in this process, whatever the cluster
    try:
        grades = grade_programs(judge, items, grading, cache)
    finally:
        if own_judge:
            judge.close()
    by_sample = {(g.problem_id, g.index): g for g in grades}
    correct = {p.problem_id: [by_sample[(p.problem_id, i)].correct for i in range(sampling.n)] for p in problems}

    results: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model_path": model_path,
        "benchmark": {"name": e.benchmark.name, "source_desc": _source_desc(e.benchmark)},
        "backend": {"backend": e.generation.backend, "key": key},
        "prompt": prompt.version_id, "strip_think": bool(e.prompt.strip_think),
        "sampling": dataclasses.asdict(sampling),
        "grading": dataclasses.asdict(grading),
        "judge_errors": sum(g.judge_error for g in grades),
        "empty_extractions": sum(1 for _, _, code in items if not code.strip()),
        "truncated_samples": sum(s.finish_reason == "length" for v in samples.values() for s in v),
        "report_row": {"model_name": e.report.model_name or Path(model_path).name or model_path,
                       **{k: str(e.report[k]) for k in ("base", "stage", "size", "data", "task")}},
        "windows": {},
    }
    ks = list(e.metrics.pass_k)
    for w in windows:
        sel = by_window[w.name]
        sub = {p.problem_id: correct[p.problem_id] for p in sel}
        results["windows"][w.name] = {
            "summary": window_summary(w, sel), "score": score(sub, ks),
            "by_difficulty": breakdown(sel, sub, ks, "difficulty"), "by_platform": breakdown(sel, sub, ks, "platform"),
        }
    per_problem = []
    for p in problems:
        gs = [by_sample[(p.problem_id, i)] for i in range(sampling.n)]
        per_problem.append({
            "problem_id": p.problem_id, "windows": [w.name for w in windows if w.contains(p)],
            "difficulty": p.difficulty, "platform": p.platform, "contest_date": p.contest_date,
            "kind": p.kind, "tests": len(p.tests), "n": sampling.n, "correct": sum(g.correct for g in gs),
            "pass@1": sum(g.correct for g in gs) / sampling.n,
            "lcb_results": [g.results for g in gs], "messages": [g.message for g in gs],
            "finish_reasons": [s.finish_reason for s in samples[p.problem_id]],
            "judge_errors": sum(g.judge_error for g in gs),
            "known_issue": p.metadata.get("known_issue"),
        })
    paths = write_reports(out_dir, results, per_problem)
    results["paths"] = {k: str(v) for k, v in paths.items()}
    return results


def print_summary(results: dict[str, Any]) -> None:
    n = results["sampling"]["n"]
    print("\n".join(header_lines(results)))
    for name, w in results["windows"].items():
        s = w["score"]
        if not s.get("problems"):
            print(f"{name}: no problems in window")
            continue
        mix = ", ".join(f"{v} {k}" for k, v in w["summary"]["difficulty"].items())
        ks = ", ".join(f"pass@{k} {v:.1f}" for k, v in s["pass@k"].items())
        print(f"{name}: avg@{n} = {s[f'avg@{n}']:.1f} ± {s['std']:.1f} over {s['problems']} problems ({mix}); {ks}")
    for k, v in results.get("paths", {}).items():
        print(f"{k}: {v}")


def dry_run_text(cfg: DictConfig) -> str:
    return json.dumps(plan(cfg), indent=2, default=str)


def run_problems_only(cfg: DictConfig) -> list[Problem]:
    """Load the configured benchmark (used by the converter CLI and tests)."""
    windows = windows_from_config(_windows_cfg(cfg.eval.windows))
    return load_benchmark(OmegaConf.to_container(cfg.eval.benchmark, resolve=True), windows)
