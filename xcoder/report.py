"""The pipeline report: one markdown page over every stage's artifacts (counts, drops, losses,
rewards, scores), each number read back from the files the stages wrote — never from memory.

Each stage has a summarizer reading that stage's own files:
  synth  `<synth.output_dir>/manifest.json` (per-stage counts, drops by reason), the export's
         `data_card.json`, and the SFT/RL parquet row counts
  sft    `<sft.output_dir>/manifest.json` (`xcoder.runs.Manifest`: data stats, checkpoint) and
         ms-swift's `logging.jsonl`
  rl     ms-swift's `logging.jsonl` (reward per step), `<rl.output_dir>/rewards.jsonl` (format failures,
         verdicts), `<rl.output_dir>/manifest.json` (`xcoder.runs.Manifest`)
  eval   `<eval.output_dir>/results.json` (avg@n per window) and `summary.json`
A missing file is reported as missing (with its path), never papered over.

`python -m xcoder.report <overrides>` rewrites the report from the files alone (e.g. after a Slurm chain).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from omegaconf import DictConfig

from xcoder.registry import STAGES
from xcoder.rl.curve import plot_rewards, verl_steps
from xcoder.runs import Manifest

log = logging.getLogger(__name__)



# ---- small readers ------------------------------------------------------------------------------
def load_json(path: Path) -> Any | None:
    """A JSON file, or None (logged) when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("report: cannot read %s: %s", path, exc)
        return None


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn or non-object line is skipped (logged)."""
    rows: list[dict[str, Any]] = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return rows
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            log.warning("report: %s line %d is not JSON; skipped", path, n)
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def last_run(rows: Sequence[dict[str, Any]], counter: Callable[[dict[str, Any]], int | None]) -> list[dict[str, Any]]:
    """The rows of the last run in an appended log: a new run starts where the counter goes back
    (equal values repeat within a run: ms-swift's closing summary row, several responses per call)."""
    start, prev = 0, None
    for i, row in enumerate(rows):
        value = counter(row)
        if value is None:
            continue
        if prev is not None and value < prev:
            start = i
        prev = value
    return list(rows[start:])


def _swift_step(row: dict[str, Any]) -> int | None:
    step = row.get("global_step/max_steps")
    if isinstance(step, str) and "/" in step:
        try:
            return int(step.split("/")[0])
        except ValueError:
            return None
    return None


def _max_steps(row: dict[str, Any]) -> int | None:
    step = row.get("global_step/max_steps")
    if isinstance(step, str) and "/" in step:
        try:
            return int(step.split("/")[1])
        except ValueError:
            return None
    return None


def parquet_rows(path: Path) -> int | None:
    """Row count from the parquet footer (no data read); None when the file is missing."""
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError):
        return None


def link(path: Path | str, report_dir: Path) -> str:
    rel = os.path.relpath(Path(path), report_dir)
    mark = "" if Path(path).exists() else " (missing)"
    return f"[`{rel}`]({rel}){mark}"


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return "—" if value is None else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def missing(path: Path | str, what: str) -> list[str]:
    return [f"- **{what} not found**: `{path}` (the stage has not written it yet, or it failed)", ""]


# ---- per-stage summaries ------------------------------------------------------------------------
def summarize_synth(cfg: DictConfig, report_dir: Path) -> list[str]:
    out_dir = Path(str(cfg.synth.output_dir))
    manifest_path = out_dir / "manifest.json"
    sft_parquet, rl_parquet = Path(str(cfg.synth.sft_parquet)), Path(str(cfg.synth.rl_parquet))
    card_path = sft_parquet.parent / "data_card.json"
    lines: list[str] = []
    manifest = load_json(manifest_path)
    if manifest is None:
        return missing(manifest_path, "synth manifest")
    rows = []
    for name, st in manifest.get("stages", {}).items():
        if "kept" in st or "dropped" in st:
            kept, dropped = st.get("kept"), st.get("dropped")
        else:  # export counts rows, not units
            kept, dropped = f"SFT {st.get('sft_rows')}, RL {st.get('rl_rows')}", None
        work = (f"{st.get('processed_units')} new, {st.get('resumed_units')} resumed"
                if "processed_units" in st else ("skipped (up to date)" if st.get("skipped") else ""))
        drops = dict(st.get("drop_reasons") or {})
        drops.update({k: v for k, v in (st.get("test_drop_reasons") or {}).items() if v})
        rows.append([name, kept, dropped, drops or "none", work, st.get("seconds")])
    lines += ["Counts per stage (from the synth manifest; drops by reason):", ""]
    lines += table(["stage", "kept", "dropped", "drops by reason", "units this run", "seconds"], rows) + [""]
    card = load_json(card_path)
    n_sft, n_rl = parquet_rows(sft_parquet), parquet_rows(rl_parquet)
    facts = [("SFT rows (parquet)", n_sft), ("RL rows (parquet)", n_rl)]
    if card is not None:
        export = manifest.get("stages", {}).get("export", {})
        exp_manifest = load_json(sft_parquet.parent / "manifest.json") or {}
        facts.insert(0, ("kept tasks", exp_manifest.get("kept_tasks", export.get("kept_tasks"))))
        styles = card.get("styles", {})
        facts += [("tasks by style", styles.get("kept_tasks")), ("SFT rows by style", styles.get("sft_rows")),
                  ("final tests", card.get("tests", {}).get("final_tests")),
                  ("tests by source", card.get("tests", {}).get("by_source")),
                  ("export drops", (exp_manifest.get("sft") or {}).get("drop_reasons")),
                  ("LLM", f"{(manifest.get('llm') or {}).get('model')} ({(manifest.get('llm') or {}).get('mode')})")]
    else:
        lines += missing(card_path, "data card JSON")
    lines += table(["", "value"], facts) + [""]
    lines += ["Artifacts: " + ", ".join([link(sft_parquet, report_dir), link(rl_parquet, report_dir),
                                         link(sft_parquet.parent / "DATA_CARD.md", report_dir),
                                         link(card_path, report_dir), link(manifest_path, report_dir)])]
    return lines


def _loss_rows(log_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in last_run(log_rows, _swift_step) if "loss" in r and _swift_step(r) is not None]


def summarize_sft(cfg: DictConfig, report_dir: Path) -> list[str]:
    out_dir = Path(str(cfg.sft.output_dir))
    manifest_path = out_dir / "manifest.json"
    log_path = Path(str(cfg.sft.checkpoints_dir)) / "logging.jsonl"
    final = Path(str(cfg.sft.final_checkpoint))
    manifest = Manifest.read(manifest_path)
    lines: list[str] = []
    if manifest is None:
        lines += missing(manifest_path, "SFT manifest")
    steps = _loss_rows(load_jsonl(log_path))
    facts: list[tuple[str, Any]] = []
    if manifest is not None:
        data = manifest.data
        tokens = data.get("tokens") or {}
        facts += [("status", manifest.status), ("data source", data.get("source")),
                  ("rows read / written", f"{data.get('rows_read')} / {data.get('rows_written')}"),
                  ("rows dropped", data.get("dropped") or "none"),
                  ("tokens per row (p50 / max)", f"{tokens.get('p50')} / {tokens.get('max')}"),
                  ("checkpoint", manifest.checkpoint)]
    if steps:
        facts += [("steps", f"{_swift_step(steps[-1])} / {_max_steps(steps[-1])}"),
                  ("loss first → last", f"{fmt(steps[0]['loss'])} → {fmt(steps[-1]['loss'])}")]
        if "token_acc" in steps[-1]:
            facts.append(("token acc first → last", f"{fmt(steps[0]['token_acc'])} → {fmt(steps[-1]['token_acc'])}"))
    else:
        lines += missing(log_path, "ms-swift training log")
    facts.append(("final checkpoint (→ rl.model_path)",
                  f"`{final}` → `{os.path.relpath(os.path.realpath(final))}`" if final.exists() else f"`{final}` (missing)"))
    lines += table(["", "value"], facts) + [""]
    if steps:
        lines += ["Loss per step:", ""]
        lines += table(["step", "loss", "grad norm", "lr"],
                       [[_swift_step(r), r.get("loss"), r.get("grad_norm"), r.get("learning_rate")] for r in steps]) + [""]
    lines += ["Artifacts: " + ", ".join([link(final, report_dir), link(log_path, report_dir),
                                         link(manifest_path, report_dir), link(out_dir / "swift.log", report_dir),
                                         link(out_dir / "data" / "stats.json", report_dir)])]
    return lines


def summarize_rl(cfg: DictConfig, report_dir: Path) -> list[str]:
    out_dir = Path(str(cfg.rl.output_dir))
    log_path = Path(str(cfg.rl.checkpoints_dir)) / "logging.jsonl"
    rewards_path = out_dir / "rewards.jsonl"
    manifest_path = out_dir / "manifest.json"
    final = Path(str(cfg.rl.final_checkpoint))
    lines: list[str] = []
    facts: list[tuple[str, Any]] = [("backend", cfg.rl.backend), ("model (from SFT)", cfg.rl.model_path)]
    manifest = Manifest.read(manifest_path)
    if manifest is not None:
        facts += [("status", manifest.status), ("prompts", manifest.data.get("prompts")),
                  ("checkpoint", manifest.checkpoint)]
    steps = [r for r in last_run(load_jsonl(log_path), _swift_step) if "reward" in r and _swift_step(r) is not None]
    if steps:
        means = [float(r["reward"]) for r in steps]
        facts += [("steps", f"{_swift_step(steps[-1])} / {_max_steps(steps[-1])}"),
                  ("reward mean first → last", f"{fmt(means[0])} → {fmt(means[-1])}"),
                  ("reward mean over steps", sum(means) / len(means))]
    elif str(cfg.rl.backend) == "swift":
        lines += missing(log_path, "ms-swift GRPO log")
    verl_rows = verl_steps(Path(str(cfg.rl.checkpoints_dir))) if str(cfg.rl.backend) == "verl" else []
    if verl_rows:
        means = [float(r["reward mean"]) for r in verl_rows]
        facts += [("trainer", "verl `main_ppo` (GRPO)"), ("steps", len(verl_rows)),
                  ("reward mean first → last", f"{fmt(means[0])} → {fmt(means[-1])}"),
                  ("reward mean over steps", sum(means) / len(means))]
    elif str(cfg.rl.backend) == "verl":
        lines += missing(Path(str(cfg.rl.checkpoints_dir)) / "metrics", "verl per-step metrics (trainer.logger file)")
    curve = [(int(_swift_step(r) or 0), float(r["reward"])) for r in steps] or [(int(r["step"]), float(r["reward mean"]))
                                                                                 for r in verl_rows]
    png = plot_rewards([c[0] for c in curve], [c[1] for c in curve], report_dir / "rl_reward.png",
                       f"GRPO reward per step ({cfg.rl.backend})") if curve else None
    graded = last_run(load_jsonl(rewards_path), lambda r: r.get("call") if isinstance(r.get("call"), int) else None)
    if graded:
        formats: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        for r in graded:
            key = r.get("format_failure") or "ok"
            formats[key] = formats.get(key, 0) + 1
            for v, n in (r.get("verdicts") or {}).items():
                verdicts[v] = verdicts.get(v, 0) + int(n)
        facts += [("graded responses", len(graded)),
                  ("responses by format check", formats),
                  ("test verdicts", verdicts or "none (no response reached the judge)"),
                  ("judge errors", sum(1 for r in graded if r.get("judge_error")))]
    elif str(cfg.rl.backend) == "swift":
        lines += missing(rewards_path, "reward log")
    facts.append(("final checkpoint (→ eval.model_path)",
                  f"`{final}` → `{os.path.relpath(os.path.realpath(final))}`" if final.exists() else f"`{final}` (missing)"))
    lines += table(["", "value"], facts) + [""]
    if steps:
        lines += ["Reward per step:", ""]
        lines += table(["step", "reward mean", "reward std", "completion length", "clipped ratio", "loss"],
                       [[_swift_step(r), r.get("reward"), r.get("reward_std"), r.get("completions/mean_length"),
                         r.get("completions/clipped_ratio"), r.get("loss")] for r in steps]) + [""]
    if verl_rows:
        lines += ["Reward per step (our reward function, mean over the step's rollouts):", ""]
        lines += table(list(verl_rows[0]), [list(r.values()) for r in verl_rows]) + [""]
    if png is not None:
        lines += [f"![reward per step]({os.path.relpath(png, report_dir)})", ""]
    logs = ([link(Path(str(cfg.rl.checkpoints_dir)) / "metrics", report_dir)] if str(cfg.rl.backend) == "verl"
            else [link(log_path, report_dir), link(rewards_path, report_dir)])
    lines += ["Artifacts: " + ", ".join([link(final, report_dir), *logs]
                                        + ([link(manifest_path, report_dir)] if manifest is not None else []))]
    return lines


def summarize_eval(cfg: DictConfig, report_dir: Path) -> list[str]:
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


SUMMARIZERS: dict[str, Callable[[DictConfig, Path], list[str]]] = {
    "synth": summarize_synth, "sft": summarize_sft, "rl": summarize_rl, "eval": summarize_eval,
}


# ---- the page -----------------------------------------------------------------------------------
def write_report(cfg: DictConfig, runs: Sequence[dict[str, Any]] = (), total_seconds: float | None = None) -> Path:
    """Write `pipeline.report` from the stages' files; `runs` are this invocation's stage processes."""
    report = Path(str(cfg.pipeline.report))
    report.parent.mkdir(parents=True, exist_ok=True)
    report_dir = report.parent
    stages = [str(s) for s in cfg.pipeline.stages]
    if not runs:  # standalone: timings of the last pipeline run, if any
        timings = load_json(Path(str(cfg.pipeline.timings))) or {}
        runs, total_seconds = timings.get("stages", []), timings.get("total_seconds")
    by_stage = {r["stage"]: r for r in runs}
    lines = [f"# xcoder pipeline report: `{cfg.run.name}`", ""]
    lines += ["Chain: synth → `" + str(cfg.synth.sft_parquet) + "` / `" + str(cfg.synth.rl_parquet)
              + "` → sft → `" + str(cfg.sft.final_checkpoint) + "` → rl → `" + str(cfg.rl.final_checkpoint)
              + "` → eval → `" + str(Path(str(cfg.eval.output_dir)) / "results.json") + "`", ""]
    status_rows = []
    for stage in stages:
        r = by_stage.get(stage)
        if r is None:
            status_rows.append([stage, "not run in this invocation", None])
        else:
            status_rows.append([stage, "ok" if r.get("returncode") == 0 else f"FAILED (exit {r.get('returncode')})",
                                round(float(r.get("seconds", 0.0)), 1)])
    if total_seconds is not None:
        status_rows.append(["**total**", "", round(float(total_seconds), 1)])
    lines += table(["stage", "status", "wall seconds (this pipeline run)"], status_rows) + [""]
    for stage in stages:
        lines += ["", f"## {stage}: {STAGES[stage].title}", ""]
        r = by_stage.get(stage)
        if r is not None and r.get("command"):
            cmd = [c for c in r["command"][3:]]  # drop `python -m xcoder.cli`
            lines += [f"Command: `xcoder {' '.join(cmd)}`", ""]
        try:
            lines += SUMMARIZERS[stage](cfg, report_dir)
        except Exception as exc:  # a malformed artifact must not hide the other stages' sections
            log.exception("report: summarizing %s failed", stage)
            lines += [f"- **could not summarize {stage}**: {type(exc).__name__}: {exc}"]
    tmp = report.with_name(f".{report.name}.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, report)
    return report


def main(argv: Sequence[str]) -> int:
    from xcoder.stage import stage_main

    def runner(cfg: DictConfig, dry_run: bool) -> int:
        print(f"report: {write_report(cfg)}")
        return 0

    return stage_main(argv, stage="report", description="Rewrite the pipeline report from the stages' files.",
                      runner=runner)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
