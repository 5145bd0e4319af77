"""The reward curve of an RL run, read back from the files the trainer wrote (either backend).

verl:  `trainer.logger` `file` (the CPU profile adds it) writes one JSON line per step to
       `VERL_FILE_LOGGER_PATH`; `xcoder rl` points that at `<checkpoints_dir>/metrics/launch-<time>.jsonl`,
       one file per launch (verl truncates the file it opens), so a resumed run keeps the steps of the
       launches before it; later launches win for a repeated step. The files live under
       checkpoints_dir, so a new run key moves them aside together with the checkpoints.
swift: ms-swift's `<checkpoints_dir>/logging.jsonl` (`reward` per logged step).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

METRICS_DIR = "metrics"
# verl metric keys -> the report's columns (critic/score = our reward function's "score")
VERL_COLUMNS = {"reward mean": "critic/score/mean", "reward max": "critic/score/max", "reward min": "critic/score/min",
                "response length": "response_length/mean", "clipped ratio": "response_length/clip_ratio",
                "pg loss": "actor/pg_loss", "step time (s)": "timing_s/step"}


def verl_metrics_path(checkpoints_dir: str | Path, stamp: str) -> Path:
    return Path(checkpoints_dir) / METRICS_DIR / f"launch-{stamp}.jsonl"


def verl_steps(checkpoints_dir: str | Path) -> list[dict[str, Any]]:
    """One row per training step `{"step": n, <VERL_COLUMNS>...}`, in step order."""
    by_step: dict[int, dict[str, Any]] = {}
    for path in sorted((Path(checkpoints_dir) / METRICS_DIR).glob("launch-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a launch killed mid-write
                continue
            data = row.get("data") or {}
            if "critic/score/mean" in data and isinstance(row.get("step"), int):
                by_step[row["step"]] = {"step": row["step"], **{k: data.get(v) for k, v in VERL_COLUMNS.items()}}
    return [by_step[s] for s in sorted(by_step)]


def mean_reward(rows: list[dict[str, Any]], first: int | None = None, last: int | None = None) -> float:
    """Mean of the per-step reward means over the first or last `n` steps."""
    sel = rows[:first] if first is not None else rows[-last:] if last is not None else rows
    vals = [float(r["reward mean"]) for r in sel if r.get("reward mean") is not None]
    if not vals:
        raise ValueError("no reward in the selected steps")
    return sum(vals) / len(vals)


def plot_rewards(steps: list[int], rewards: list[float], out: Path, title: str) -> Path | None:
    """Reward-per-step PNG (matplotlib, headless); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the report still has the table
        log.warning("matplotlib not installed: no reward curve PNG")
        return None
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    from matplotlib.ticker import MaxNLocator

    ax.plot(steps, rewards, marker="o")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward (judge)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
