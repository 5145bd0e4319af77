"""The pipeline report: one markdown page over every stage's artifacts (counts, drops, losses,
rewards, scores), each number read back from the files the stages wrote — never from memory.

Each stage's `xcoder/<stage>/summary.py` (found through `xcoder.registry`) reads that stage's own files:
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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from xcoder.registry import STAGES

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


def swift_step(row: dict[str, Any]) -> int | None:
    step = row.get("global_step/max_steps")
    if isinstance(step, str) and "/" in step:
        try:
            return int(step.split("/")[0])
        except ValueError:
            return None
    return None


def swift_max_steps(row: dict[str, Any]) -> int | None:
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


def final_link(final: Path) -> str:
    """A stage's published checkpoint link and where it points (or that it is missing)."""
    return f"`{final}` → `{os.path.relpath(os.path.realpath(final))}`" if final.exists() else f"`{final}` (missing)"


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
            lines += STAGES[stage].summarize(cfg, report_dir)
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
