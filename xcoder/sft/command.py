"""Hydra `sft` config -> the exact `swift sft` command line and its torchrun environment.

ms-swift launches torchrun itself when `NPROC_PER_NODE`/`NNODES` are set (it also reads `NODE_RANK`,
`MASTER_ADDR`, `MASTER_PORT`), so one command serves a single CPU process, one GPU node and a
multi-node job: the world size comes from the `cluster` group, the per-node rank and rendezvous from
the launcher's environment (`sft-recipe/slurm_sft.sbatch` sets them from SLURM_*).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig

from xcoder.swift_args import swift_flags

log = logging.getLogger(__name__)

RENDEZVOUS_VARS = ("NODE_RANK", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_MASTER_PORT = "29500"


class LaunchError(ValueError):
    """The launch configuration is inconsistent (world size, rendezvous variables, batch size)."""


@dataclasses.dataclass
class SwiftCommand:
    argv: list[str]  # executable + "sft" + flags
    env: dict[str, str]  # variables set for the swift process on top of the inherited environment
    world_size: int  # processes across all nodes

    def shell(self) -> str:
        """One shell line `VAR=value ... swift sft --flag value ...` for logs/manifests (secret values are `***`)."""
        from xcoder.redaction import mask_env

        prefix = [f"{k}={shlex.quote(v) if not v.startswith('$') else v}" for k, v in mask_env(self.env).items()]
        return " ".join(prefix + [shlex.join(self.argv)])


def swift_executable(cfg: DictConfig) -> str:
    """`sft.swift_bin`, else the `swift` script of this interpreter's environment, else PATH."""
    if cfg.sft.swift_bin:
        return str(cfg.sft.swift_bin)
    beside = Path(sys.executable).parent / "swift"
    if beside.exists():
        return str(beside)
    found = shutil.which("swift")
    if not found:
        raise LaunchError("cannot find the `swift` executable (pip install ms-swift, or set sft.swift_bin)")
    return found


def torchrun_env(cfg: DictConfig, environ: Mapping[str, str], *, dry_run: bool) -> tuple[dict[str, str], int]:
    """Torchrun variables for ms-swift from `cluster` (+ the launcher's rank/rendezvous vars).

    `cluster.gpus_per_node: 0` means CPU: one process, no torchrun. Values already exported by a
    launcher must agree with the config (a mismatch is an error, not a silent override).
    """
    nnodes, gpus = int(cfg.cluster.nnodes), int(cfg.cluster.gpus_per_node)
    if nnodes < 1 or gpus < 0:
        raise LaunchError(f"cluster.nnodes={nnodes} / cluster.gpus_per_node={gpus} are not valid")
    if nnodes > 1 and gpus == 0:
        raise LaunchError("multi-node SFT needs GPUs: cluster.gpus_per_node is 0")
    env: dict[str, str] = {}
    if gpus > 0:
        env["NPROC_PER_NODE"] = str(gpus)
    if nnodes > 1:
        env["NNODES"] = str(nnodes)
    for var, key in (("NPROC_PER_NODE", "cluster.gpus_per_node"), ("NNODES", "cluster.nnodes")):
        given = environ.get(var)
        expected = env.get(var, "1" if var == "NNODES" else None)
        if given is not None and given != expected:
            raise LaunchError(f"{var}={given} in the environment but {key} gives {expected or 'CPU (unset)'}; "
                              f"pass {key}={given} (cluster values drive the launch)")
    if nnodes > 1:
        for var in RENDEZVOUS_VARS:
            if var in environ:
                env[var] = environ[var]
            elif var == "MASTER_PORT":
                env[var] = DEFAULT_MASTER_PORT
            elif dry_run:
                env[var] = f"${var}"  # printed as a placeholder: set per node by the launcher
            else:
                raise LaunchError(f"multi-node SFT (cluster.nnodes={nnodes}) needs {var} in the environment "
                                  f"(sft-recipe/slurm_sft.sbatch sets it per node)")
    return env, nnodes * max(gpus, 1)


def global_batch_size(cfg: DictConfig, world_size: int) -> int:
    """Rows per optimizer step: per-device batch x accumulation x data-parallel size (world / sp).
    What transformers logs as "Total train batch size (w. parallel, distributed & accumulation)"."""
    sw = cfg.sft.swift
    per_device, accum = int(sw.per_device_train_batch_size), int(sw.gradient_accumulation_steps or 1)
    return per_device * accum * world_size // int(sw.sequence_parallel_size or 1)


def check_global_batch(cfg: DictConfig, world_size: int) -> str | None:
    """Compare `global_batch_size` with `sft.expect_global_batch_size`; return a message when they
    differ (None when equal or unchecked)."""
    expected = cfg.sft.expect_global_batch_size
    if expected is None:
        return None
    sw = cfg.sft.swift
    per_device, accum = int(sw.per_device_train_batch_size), int(sw.gradient_accumulation_steps or 1)
    sp = int(sw.sequence_parallel_size or 1)
    actual = global_batch_size(cfg, world_size)
    if actual == int(expected):
        return None
    return (f"global batch {per_device} x {accum} x {world_size} processes"
            f"{f' / sp {sp}' if sp > 1 else ''} = {actual}, but sft.expect_global_batch_size={expected} "
            f"(paper: 1 x 2 x 64 GPUs; use cluster=slurm, or change gradient_accumulation_steps)")


def check_cpu_ranks(cfg: DictConfig, world_size: int, *, cuda: bool) -> None:
    """Several processes without CUDA need `use_cpu`: otherwise transformers does not treat the
    torchrun group as distributed and each rank silently trains its own copy of the model (with it,
    accelerate runs them as one gloo group)."""
    if world_size > 1 and not cuda and not cfg.sft.swift.get("use_cpu"):
        raise LaunchError(f"{world_size} processes without CUDA: set sft.swift.use_cpu=true "
                          "(otherwise every rank trains its own copy; experiment=demo sets it)")


def check_switches(swift_cfg: DictConfig) -> None:
    """Reject switch combinations ms-swift would only reject after start-up (minutes on a cluster)."""
    if swift_cfg.packing and swift_cfg.lazy_tokenize:
        raise LaunchError("sft.swift.packing=true needs sft.swift.lazy_tokenize=false "
                          "(ms-swift: 'Packing and lazy_tokenize are incompatible')")
    sp = int(swift_cfg.sequence_parallel_size or 1)
    if sp < 1:
        raise LaunchError(f"sft.swift.sequence_parallel_size must be >= 1, got {sp}")


def build_command(cfg: DictConfig, *, model: str, dataset: str, environ: Mapping[str, str] | None = None,
                  dry_run: bool = False, resume_from: str | None = None) -> SwiftCommand:
    """The `swift sft` invocation for this config: model, dataset, output dir, `sft.swift` flags."""
    environ = os.environ if environ is None else environ
    check_switches(cfg.sft.swift)
    env, world = torchrun_env(cfg, environ, dry_run=dry_run)
    env.update({str(k): str(v) for k, v in (cfg.sft.env or {}).items()})
    argv = [swift_executable(cfg), "sft", "--model", model, "--dataset", dataset,
            "--output_dir", str(cfg.sft.checkpoints_dir), *swift_flags(cfg.sft.swift)]
    if resume_from:
        argv += ["--resume_from_checkpoint", resume_from]
        if cfg.sft.swift.save_only_model:
            # no optimizer state was saved: reload the weights and skip the data already seen
            argv += ["--resume_only_model", "true"]
    argv += [str(a) for a in (cfg.sft.extra_args or [])]
    return SwiftCommand(argv=argv, env=env, world_size=world)
