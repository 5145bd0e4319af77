"""The SFT section of the pipeline report: the run `Manifest` (data stats, checkpoint) and ms-swift's
`logging.jsonl` (loss per step), read back from the files the stage wrote."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from xcoder.report import final_link, fmt, last_run, link, load_jsonl, missing, swift_max_steps, swift_step, table
from xcoder.runs import Manifest


def _loss_rows(log_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in last_run(log_rows, swift_step) if "loss" in r and swift_step(r) is not None]


def summarize(cfg: DictConfig, report_dir: Path) -> list[str]:
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
        facts += [("steps", f"{swift_step(steps[-1])} / {swift_max_steps(steps[-1])}"),
                  ("loss first → last", f"{fmt(steps[0]['loss'])} → {fmt(steps[-1]['loss'])}")]
        if "token_acc" in steps[-1]:
            facts.append(("token acc first → last", f"{fmt(steps[0]['token_acc'])} → {fmt(steps[-1]['token_acc'])}"))
    else:
        lines += missing(log_path, "ms-swift training log")
    facts.append(("final checkpoint (→ rl.model_path)", final_link(final)))
    lines += table(["", "value"], facts) + [""]
    if steps:
        lines += ["Loss per step:", ""]
        rows = [[swift_step(r), r.get("loss"), r.get("grad_norm"), r.get("learning_rate")] for r in steps]
        lines += table(["step", "loss", "grad norm", "lr"], rows) + [""]
    lines += ["Artifacts: " + ", ".join([link(final, report_dir), link(log_path, report_dir),
                                         link(manifest_path, report_dir), link(out_dir / "swift.log", report_dir),
                                         link(out_dir / "data" / "stats.json", report_dir)])]
    return lines
