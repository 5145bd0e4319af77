"""Render the `python -m verl.trainer.main_ppo ...` and model-merger commands from `cfg.rl`.

Why rendering instead of calling verl in-process: verl's trainer is a Hydra app that owns Ray and
the GPUs; a command line is what users copy, what Slurm runs and what CI can check without GPUs
(`--dry-run` and tests/rl compose these exact overrides with verl's own ppo_trainer.yaml).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xcoder.rl.reward import RewardSettings
from xcoder.rl.verl_cpu.profile import cpu_added, cpu_enabled, cpu_env, cpu_overrides

REWARD_FILE = Path(__file__).resolve().with_name("verl_reward.py")
_PLAIN = re.compile(r"^[A-Za-z0-9_./\-]+$")


def hydra_value(value: Any) -> str:
    """A Python value as Hydra override syntax (strings quoted unless plainly safe)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in ("null", "true", "false") and not _looks_numeric(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves of a nested mapping as (dotted.key, value); lists are leaves."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    out: list[tuple[str, Any]] = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(flatten(value, f"{path}."))
        else:
            out.append((path, value))
    return out


def reward_settings(rl: DictConfig) -> RewardSettings:
    """`rl.reward` as the reward's settings (the same values verl passes as reward_kwargs)."""
    return RewardSettings.from_config(rl.reward)


def abs_path(path: str) -> str:
    """Absolute local path (Ray workers do not share the launcher's working directory)."""
    return os.path.abspath(os.path.expanduser(path))


def model_ref(path: str) -> str:
    """A local model dir made absolute; a hub id (org/name, not on disk) left as is."""
    local = Path(path).expanduser()
    if local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1:
        return abs_path(path)
    return path


def verl_overrides(rl: DictConfig, train_files: Sequence[str], val_files: Sequence[str] | None) -> list[str]:
    """Every override of verl's ppo_trainer.yaml, in a stable order."""
    pairs: list[tuple[str, Any]] = flatten(rl.verl)
    pairs += [
        ("actor_rollout_ref.model.path", model_ref(str(rl.model_path))),
        ("data.train_files", [abs_path(f) for f in train_files]),
        ("data.val_files", [abs_path(f) for f in (val_files or train_files)]),
        ("trainer.nnodes", int(rl.nnodes)),
        ("trainer.n_gpus_per_node", int(rl.gpus_per_node)),
        ("trainer.default_local_dir", abs_path(str(rl.checkpoints_dir))),
        ("reward.num_workers", int(rl.reward.num_workers)),
    ]
    if not val_files:
        pairs.append(("trainer.test_freq", -1))  # no validation set given: never validate on train data
    if rl.data.curriculum:
        pairs.append(("data.shuffle", False))  # keep the pass-rate order [paper-recipe §12.6]
    backend = str(rl.reward.backend)
    if backend == "xcoder":
        pairs += [
            ("reward.custom_reward_function.path", str(REWARD_FILE)),
            ("reward.custom_reward_function.name", "compute_score"),
        ]
        added = [(f"reward.custom_reward_function.reward_kwargs.{f.name}", getattr(reward_settings(rl), f.name))
                 for f in dataclasses.fields(RewardSettings)]
    elif backend == "sandbox_fusion":
        pairs += [
            ("reward.sandbox_fusion.url", str(rl.reward.judge.url).rstrip("/") + "/run_code"),
            ("reward.sandbox_fusion.max_concurrent", int(rl.reward.judge.concurrency)),
            ("reward.sandbox_fusion.memory_limit_mb", int(rl.reward.memory_mb or 1024)),
        ]
        added = []
    else:
        raise ValueError(f"rl.reward.backend must be 'xcoder' or 'sandbox_fusion', got {backend!r}")
    added += flatten(rl.verl_added)
    if cpu_enabled(rl):  # CPU-only machine: stock verl through xcoder.rl.verl_cpu (never on GPU launches)
        pairs += cpu_overrides(rl)
        added += cpu_added(rl)
    merged: dict[str, Any] = {}
    for key, value in pairs:
        merged[key] = value  # later entries win (curriculum, test_freq)
    out = [f"{k}={hydra_value(v)}" for k, v in merged.items()]
    out += [f"+{k}={hydra_value(v)}" for k, v in added]
    out += [str(a) for a in rl.verl_extra_args]
    return out


def verl_env(rl: DictConfig) -> dict[str, str]:
    """`rl.env` plus, on a CPU launch, what loads the CPU backend into every verl process."""
    env = {k: str(v) for k, v in OmegaConf.to_container(rl.env, resolve=True).items()}  # type: ignore[union-attr]
    if cpu_enabled(rl):
        env = {**cpu_env(), **env}
    return env


def python_bin(rl: DictConfig) -> str:
    return str(rl.python_bin) if rl.python_bin else sys.executable


def verl_command(rl: DictConfig, train_files: Sequence[str], val_files: Sequence[str] | None) -> list[str]:
    return [python_bin(rl), "-m", "verl.trainer.main_ppo", *verl_overrides(rl, train_files, val_files)]


def latest_actor_dir(checkpoints_dir: str | Path) -> Path:
    """verl writes `latest_checkpointed_iteration.txt` next to `global_step_N/actor`."""
    ckpt = Path(checkpoints_dir)
    marker = ckpt / "latest_checkpointed_iteration.txt"
    if not marker.exists():
        raise FileNotFoundError(f"{marker}: no verl checkpoint to merge (did training save one? trainer.save_freq)")
    step = marker.read_text().strip()
    return ckpt / f"global_step_{step}" / "actor"


def merge_command(rl: DictConfig, actor_dir: str | None = None) -> list[str]:
    """verl's own model merger (0.9.1 CLI: `merge --backend fsdp --local_dir --target_dir`)."""
    ckpt = abs_path(str(rl.checkpoints_dir))
    if actor_dir is None:
        actor_dir = f"{ckpt}/global_step_$(cat {ckpt}/latest_checkpointed_iteration.txt)/actor"
    return [python_bin(rl), "-m", "verl.model_merger", "merge", "--backend", str(rl.merge.backend),
            "--local_dir", str(actor_dir), "--target_dir", abs_path(str(rl.final_checkpoint))]


def shell_join(cmd: Sequence[str]) -> str:
    """Shell-quoted, except a `$(cat ...)` placeholder left for the shell to expand."""
    parts = []
    for c in cmd:
        if "$(cat " in c:
            parts.append('"' + c + '"')
        else:
            parts.append(shlex.quote(c))
    return " ".join(parts)
