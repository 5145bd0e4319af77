"""The CPU profile of a verl launch: which overrides and environment make stock `main_ppo` run on a
machine without GPUs. Pure config logic (no verl import): `xcoder rl --dry-run` and tests use it.

Switched by `rl.cpu`: `auto` (default) = on exactly when `rl.gpus_per_node == 0` (the CPU value of
`cluster=local` and of the demo), `true`/`false` force it. GPU launches (`gpus_per_node > 0`, every
paper experiment) never get any of it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

MODULE = "xcoder.rl.verl_cpu"
RAY_NUM_CPUS = 8  # logical, one rank: a rank asks Ray for {CPU: 3, GPU: 1}; Ray's default (#cores = 2) hangs silently
RAY_CPUS_PER_RANK = 3  # verl's RayResourcePool bundle: {CPU: max_colocate_count (3), GPU: 1} per rank


def cpu_enabled(rl: DictConfig) -> bool:
    mode = str(rl.get("cpu", "auto")).lower()
    if mode in ("true", "1", "yes", "on"):
        return True
    if mode in ("false", "0", "no", "off"):
        return False
    if mode != "auto":
        raise ValueError(f"rl.cpu must be auto, true or false, got {rl.get('cpu')!r}")
    return int(rl.gpus_per_node) == 0


def cpu_ranks(rl: DictConfig) -> int:
    """FSDP ranks per node of a CPU launch: `rl.gpus_per_node` logical Ray GPUs (0, the CPU default,
    is one rank). `rl.cpu=true rl.gpus_per_node=2` runs two ranks over gloo on one machine."""
    return max(1, int(rl.gpus_per_node))


def ray_num_cpus(rl: DictConfig) -> int:
    """Ray's logical CPUs: each further rank adds its bundle to the one-rank budget."""
    return RAY_NUM_CPUS + RAY_CPUS_PER_RANK * (cpu_ranks(rl) - 1)


def ray_temp_dir(rl: DictConfig) -> str:
    """A private Ray session dir per run directory: a stray or shared Ray cluster on the machine is
    never joined, and the path stays short (Ray's unix sockets live under it: ~107-byte limit)."""
    if rl.get("cpu_ray_temp_dir"):
        return str(rl.cpu_ray_temp_dir)
    key = hashlib.sha256(os.path.abspath(str(rl.checkpoints_dir)).encode()).hexdigest()[:10]
    return str(Path("/tmp") / f"xcoder-ray-{key}")


def cpu_overrides(rl: DictConfig) -> list[tuple[str, Any]]:
    """Overrides of verl's ppo_trainer.yaml keys (win over `rl.verl`): the mechanics, not the tuning."""
    return [
        ("trainer.use_v1", False),                       # legacy trainer: the v1 one needs TransferQueue
        ("trainer.n_gpus_per_node", cpu_ranks(rl)),      # FSDP ranks, one per logical Ray "GPU"
        ("trainer.device", "cpu"),
        ("actor_rollout_ref.rollout.name", "hf"),        # xcoder.rl.verl_cpu.hf_rollout
        ("actor_rollout_ref.rollout.mode", "async"),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size", 1),
        ("actor_rollout_ref.rollout.agent.num_workers", 1),
        ("actor_rollout_ref.model.use_remove_padding", False),  # flash-attn varlen kernels only
        ("actor_rollout_ref.actor.strategy", "fsdp2"),   # FSDP1 refuses CPU params (sync_module_states)
        ("actor_rollout_ref.actor.fsdp_config.strategy", "fsdp2"),
        ("actor_rollout_ref.ref.fsdp_config.strategy", "fsdp2"),
        ("data.dataloader_num_workers", 0),
        ("reward.num_workers", 1),
        ("ray_kwargs.ray_init.num_cpus", ray_num_cpus(rl)),
        ("trainer.logger", _with_file_logger(rl)),      # per-step metrics as JSON lines (the report's reward curve)
    ]


def _with_file_logger(rl: DictConfig) -> list[str]:
    loggers = rl.verl.get("trainer", {}).get("logger", ["console"])
    loggers = [str(x) for x in (loggers if not isinstance(loggers, str) else [loggers])]
    return loggers if "file" in loggers else [*loggers, "file"]


def cpu_added(rl: DictConfig) -> list[tuple[str, Any]]:
    """Keys verl's YAML lacks (rendered `+key=value`)."""
    return [
        ("actor_rollout_ref.model.override_config.attn_implementation", "sdpa"),  # default: flash_attention_2
        ("ray_kwargs.ray_init.num_gpus", cpu_ranks(rl)),  # one logical GPU per rank
        ("ray_kwargs.ray_init._temp_dir", ray_temp_dir(rl)),
    ]


def cpu_env() -> dict[str, str]:
    """Environment of the verl process (inherited by every Ray worker it starts)."""
    return {
        "VERL_USE_EXTERNAL_MODULES": MODULE,  # verl/__init__ imports it in every process: platform, rollout, patches
        "VERL_PLATFORM": "cpu",
        "VERL_ENGINE_DEVICE": "cuda",          # verl registers its FSDP engine for cuda/npu only; runs on CPU tensors
        "RAY_ADDRESS": "",                     # never join another Ray cluster: the private one of ray_temp_dir
    }
