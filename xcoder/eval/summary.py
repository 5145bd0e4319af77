"""The eval section of the pipeline report: `results.json` (avg@n per window) and links to the reports."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from xcoder.report import link, load_json, missing, table


def summarize(cfg: DictConfig, report_dir: Path) -> list[str]:
    out_dir = Path(str(cfg.eval.output_dir))
    results_path = out_dir / "results.json"
    results = load_json(results_path)
    if results is None:
        return missing(results_path, "eval results JSON")
    sampling = results.get("sampling") or {}
    n = sampling.get("n")
    facts = [("model", results.get("model_path")), ("benchmark", (results.get("benchmark") or {}).get("source_desc")),
             ("backend", (results.get("backend") or {}).get("backend")), ("prompt", results.get("prompt")),
             ("sampling", sampling), ("judge errors", results.get("judge_errors")),
             ("samples without a code block", results.get("empty_extractions")),
             ("samples hitting max_tokens", results.get("truncated_samples"))]
    rows = []
    for name, win in (results.get("windows") or {}).items():
        summ, score = win.get("summary") or {}, win.get("score") or {}
        rows.append([name, f"{summ.get('start')} .. {summ.get('end')}", score.get("problems", summ.get("problems")),
                     summ.get("difficulty"), score.get(f"avg@{n}"), score.get("std"), score.get("pass@k")])
    lines = table(["", "value"], facts) + [""]
    lines += table(["window", "dates", "problems", "difficulty", f"avg@{n}", "std", "pass@k"], rows) + [""]
    lines += ["Artifacts: " + ", ".join(link(out_dir / f, report_dir)
                                        for f in ("results.md", "results.json", "summary.json", "problems.jsonl"))]
    return lines
