"""The RL section of the pipeline report: the run `Manifest`, the trainer's per-step rewards (ms-swift
`logging.jsonl` or verl's metrics files) with a reward plot, and the reward log's verdicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from xcoder.report import final_link, fmt, last_run, link, load_jsonl, missing, swift_max_steps, swift_step, table
from xcoder.rl.curve import plot_rewards, verl_steps
from xcoder.runs import Manifest


def summarize(cfg: DictConfig, report_dir: Path) -> list[str]:
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
    steps = [r for r in last_run(load_jsonl(log_path), swift_step) if "reward" in r and swift_step(r) is not None]
    if steps:
        means = [float(r["reward"]) for r in steps]
        facts += [("steps", f"{swift_step(steps[-1])} / {swift_max_steps(steps[-1])}"),
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
    curve = [(int(swift_step(r) or 0), float(r["reward"])) for r in steps] or [(int(r["step"]), float(r["reward mean"]))
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
    facts.append(("final checkpoint (→ eval.model_path)", final_link(final)))
    lines += table(["", "value"], facts) + [""]
    if steps:
        lines += ["Reward per step:", ""]
        lines += table(["step", "reward mean", "reward std", "completion length", "clipped ratio", "loss"],
                       [[swift_step(r), r.get("reward"), r.get("reward_std"), r.get("completions/mean_length"),
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
