"""Results JSON, per-problem log and the markdown table in the paper's format, each with the
settings that move LiveCodeBench scores (window, problem count, difficulty mix, sampling params,
template, model path) in its header."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# X-Coder main table [paper-recipe §11, P]: (model, base, stage, size, data, task, metric, v5, v6)
PUBLISHED: list[tuple[str, ...]] = [
    ("Bespoke-Stratos", "Qwen2.5-Inst", "SFT", "7B", "17k", "Real", "pass@1", "16.2", "8.57"),
    ("OpenThinker3", "Qwen2.5-Inst", "SFT", "7B", "1,200k", "Mixed", "–", "51.7", "40.8"),
    ("OlympicCoder", "Qwen2.5-Coder-Inst", "SFT", "7B", "100k", "Real", "–", "40.9", "19.3"),
    ("OCR-Qwen-Instruct", "Qwen2.5-Inst", "SFT", "7B", "736k", "Real", "avg@64", "51.3", "44.5"),
    ("rStar-Coder", "Qwen2.5-Coder-Inst", "SFT", "7B", "580K", "Mixed", "avg@16", "57.3", "–"),
    ("Qwen3-8B", "Qwen3-8B-Base", "SFT", "8B", "–", "Real", "–", "57.5", "48.4"),
    ("Skywork-OR1", "R1-Distill-Qwen", "RL", "7B", "124k", "Real", "avg@32", "47.6", "40.0"),
    ("DeepCoder-Preview", "R1-Distill-Qwen", "RL", "14B", "24k", "Real", "pass@1", "57.9", "48.5"),
    ("AReal-boba²", "R1-Distill-Qwen", "RL", "14B", "24k", "Real", "avg@32", "58.1", "56.7"),
    ("AceReason1.1-SFT", "Qwen2.5-Math", "SFT", "7B", "2.2M", "Real", "avg@8", "51.2", "–"),
    ("MiMo-SFT", "MiMo-Base", "SFT", "7B", "500k", "Unclear", "avg@8", "52.3", "45.5"),
    ("Klear-Reasoner-SFT", "Qwen3-Base", "SFT", "8B", "1500k", "Real", "avg@8", "58.5", "49.6"),
    ("X-Coder-Qwen2.5-SFT", "Qwen2.5-Coder-Inst", "SFT", "7B", "200k", "Syn", "avg@8", "60.3±2.5", "53.5±1.7"),
    ("X-Coder-Qwen3-SFT", "Qwen3-8B-Base", "SFT", "8B", "200k", "Syn", "avg@8", "59.4±2.0", "55.4±2.3"),
    ("AceReason1.1", "AceReason1.1-SFT", "SFT+RL", "7B", "–", "Real", "avg@8", "57.2", "52.1"),
    ("MiMo", "MiMo-SFT", "SFT+RL", "7B", "130k", "Unclear", "avg@8", "57.8", "49.3"),
    ("Klear-Reasoner", "Klear-Reasoner-SFT", "SFT+RL", "8B", "106k", "Real", "avg@8", "61.6", "53.1"),
    ("X-Coder-Qwen2.5", "X-Coder-Qwen2.5-SFT", "SFT+RL", "7B", "40k", "Syn", "avg@8", "62.9±1.8", "55.8±1.9"),
    ("X-Coder-Qwen3", "X-Coder-Qwen3-SFT", "SFT+RL", "8B", "40k", "Syn", "avg@8", "64.0±2.5", "56.5±1.3"),
]
PUBLISHED_WINDOWS = ("v5", "v6")


def _fmt_score(s: Mapping[str, Any]) -> str:
    if not s.get("problems"):
        return "–"
    avg = s[f"avg@{s['n']}"]
    return f"{avg:.1f}±{s['std']:.1f}"


def _mix(d: Mapping[str, int]) -> str:
    return " / ".join(f"{v} {k}" for k, v in d.items())


def header_lines(results: Mapping[str, Any]) -> list[str]:
    s, g = results["sampling"], results["grading"]
    lines = [
        f"- model: `{results['model_path']}` (backend {results['backend']['backend']})",
        f"- benchmark: {results['benchmark']['name']} ({results['benchmark']['source_desc']})",
    ]
    for name, w in results["windows"].items():
        known = w["summary"].get("known_issue_problems") or []
        lines.append(f"- window {name}: {w['summary']['start'] or '*'} .. {w['summary']['end'] or '*'} (inclusive), "
                     f"{w['summary']['problems']} problems ({_mix(w['summary']['difficulty'])})"
                     + (f"; {len(known)} with known grading errata: {', '.join(known)}" if known else ""))
    lines += [
        f"- sampling: n={s['n']}, temperature={s['temperature']}, top_p={s['top_p']}, top_k={s['top_k']}, "
        f"max_tokens={s['max_tokens']}, seed={s['seed']}",
        f"- prompt: `{results['prompt']}`; <think> stripped: {results['strip_think']}; code = last fenced block",
        f"- grading: {g['compare']} comparator, {g['time_s']} s/test, memory {g['memory_mb']} MB, "
        f"stop at first failure: {g['stop_on_first_failure']}, LCB prelude: {g['lcb_prelude']}; "
        f"judge errors: {results['judge_errors']}",
        f"- samples: {results['truncated_samples']} hit max_tokens, {results['empty_extractions']} without a fenced "
        f"code block",
    ]
    return lines


def markdown_table(results: Mapping[str, Any]) -> str:
    windows = list(results["windows"])
    row_cfg = results["report_row"]
    n = results["sampling"]["n"]
    head = ["model", "base", "stage", "size", "data", "task", "metric", *windows]
    out = [f"# LiveCodeBench evaluation: {row_cfg['model_name']}", "", *header_lines(results), "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in PUBLISHED:
        scores = dict(zip(PUBLISHED_WINDOWS, row[7:]))
        out.append("| " + " | ".join([*row[:7], *(scores.get(w, "–") for w in windows)]) + " |")
    ours = [f"**{row_cfg['model_name']} (this run)**", row_cfg["base"], row_cfg["stage"], row_cfg["size"],
            row_cfg["data"], row_cfg["task"], f"avg@{n}",
            *(f"**{_fmt_score(results['windows'][w]['score'])}**" for w in windows)]
    out.append("| " + " | ".join(str(x) for x in ours) + " |")
    out += ["", "Published rows: X-Coder (arXiv 2601.06953) main table; their windows, problem counts, metrics and "
            "budgets may differ from this run's header.", ""]
    for w in windows:
        data = results["windows"][w]
        out.append(f"## {w}: by difficulty / platform")
        out.append("")
        pass_k = " | ".join(f"pass@{k}" for k in data["score"].get("pass@k", {}))
        out.append(f"| group | problems | avg@{n} | std | {pass_k} |")
        out.append("|" + "---|" * (4 + len(data["score"].get("pass@k", {}))))
        for label, part in [("all", {"all": data["score"]}), ("difficulty", data["by_difficulty"]),
                            ("platform", data["by_platform"])]:
            for key, sc in part.items():
                if not sc.get("problems"):
                    continue
                ks = " | ".join(f"{v:.1f}" for v in sc["pass@k"].values())
                out.append(f"| {key if label == 'all' else f'{label}={key}'} | {sc['problems']} | "
                           f"{sc[f'avg@{n}']:.1f} | {sc['std']:.1f} | {ks} |")
        out.append("")
    return "\n".join(out)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """Flat key -> value summary (`summary.json`, read by the pipeline report)."""
    n = results["sampling"]["n"]
    out: dict[str, Any] = {"model_path": results["model_path"], "prompt": results["prompt"]}
    for name, w in results["windows"].items():
        sc = w["score"]
        if sc.get("problems"):
            out[f"{name} avg@{n}"] = round(sc[f"avg@{n}"], 2)
            out[f"{name} std"] = round(sc["std"], 2)
        out[f"{name} window"] = f"{w['summary']['start']}..{w['summary']['end']}"
        out[f"{name} problems"] = w["summary"]["problems"]
        out[f"{name} difficulty"] = _mix(w["summary"]["difficulty"])
    s = results["sampling"]
    out["sampling"] = (f"n={s['n']} T={s['temperature']} top_p={s['top_p']} top_k={s['top_k']} "
                       f"max_tokens={s['max_tokens']}")
    out["judge_errors"] = results["judge_errors"]
    out["empty_extractions"] = results["empty_extractions"]
    out["truncated_samples"] = results["truncated_samples"]
    return out


def write_reports(out_dir: Path, results: Mapping[str, Any], per_problem: Sequence[Mapping[str, Any]]) -> dict[str,
                                                                                                               Path]:
    paths = {"results": out_dir / "results.json", "problems": out_dir / "problems.jsonl",
             "table": out_dir / "results.md", "summary": out_dir / "summary.json"}
    write_atomic(paths["summary"], json.dumps(summary(results), indent=2) + "\n")
    write_atomic(paths["results"], json.dumps(results, indent=2, default=str) + "\n")
    write_atomic(paths["problems"], "".join(json.dumps(r, default=str) + "\n" for r in per_problem))
    write_atomic(paths["table"], markdown_table(results) + "\n")
    return paths
