"""Pre-flight check of the DeepSpeed config an SFT launch would train with, by DeepSpeed's own parser.

Why: DeepSpeed ZeRO-3 does not train on CPU at these versions (sft-recipe/README.md says why), so
without this the first cluster job would be the first to parse the config. The config is resolved
the way the launch resolves it: ms-swift maps `--deepspeed NAME` to its shipped JSON
(`SftArguments._init_deepspeed`, called here), transformers fills the "auto" values from the
training arguments (`HfTrainerDeepSpeedConfig.trainer_config_process` / `trainer_config_finalize`,
called here with the launch's values), and `deepspeed.runtime.config.DeepSpeedConfig` parses the
result for the launch's data-parallel world size — it asserts, among others, that
train_batch_size == micro batch x accumulation x world size.

    python -m xcoder.sft.deepspeed_check experiment=paper_qwen25_7b_sft cluster=slurm --hidden-size 3584
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import types
from typing import Any
from unittest import mock

from omegaconf import DictConfig

from xcoder.sft.command import build_command

log = logging.getLogger(__name__)


def launch_args(cfg: DictConfig, world_size: int) -> types.SimpleNamespace:
    """The TrainingArguments fields transformers reads to fill DeepSpeed's "auto" values."""
    sw = cfg.sft.swift
    dtype = str(sw.torch_dtype or "")
    warmup_ratio = float(sw.warmup_ratio or 0.0)
    return types.SimpleNamespace(
        world_size=world_size // int(sw.sequence_parallel_size or 1),
        per_device_train_batch_size=int(sw.per_device_train_batch_size),
        gradient_accumulation_steps=int(sw.gradient_accumulation_steps or 1),
        max_grad_norm=float(sw.max_grad_norm if sw.max_grad_norm is not None else 1.0),
        learning_rate=float(sw.learning_rate), weight_decay=float(sw.weight_decay or 0.0),
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,  # transformers' defaults; we set none
        save_on_each_node=False, fp16=dtype == "float16", fp16_full_eval=False, bf16=dtype == "bfloat16",
        bf16_full_eval=False, get_warmup_steps=lambda steps: math.ceil(steps * warmup_ratio))


def swift_config(name_or_path: str) -> dict[str, Any]:
    """ms-swift's own resolution of `--deepspeed` (name of a shipped config, JSON path or JSON text)."""
    from swift.arguments import SftArguments

    holder = types.SimpleNamespace(deepspeed=name_or_path, use_ray=False, zero_hpz_partition_size=None,
                                   deepspeed_autotp_size=None, callbacks=[])
    with mock.patch("swift.arguments.sft_args.is_mp", return_value=False):  # device_map check: no GPUs here
        SftArguments._init_deepspeed(holder)
    return holder.deepspeed


def resolve(cfg: DictConfig, *, hidden_size: int, num_training_steps: int = 1000) -> tuple[dict[str, Any], int]:
    """(filled DeepSpeed config, world size) of this SFT config's launch."""
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    command = build_command(cfg, model="model", dataset="data.jsonl", environ={}, dry_run=True)
    name = cfg.sft.swift.deepspeed
    if not name:
        raise ValueError("sft.swift.deepspeed is null: this config launches without DeepSpeed")
    args = launch_args(cfg, command.world_size)
    hf = HfTrainerDeepSpeedConfig(swift_config(str(name)))
    hf.trainer_config_process(args)
    hf.trainer_config_finalize(args, types.SimpleNamespace(config=types.SimpleNamespace(hidden_size=hidden_size)),
                               num_training_steps)
    return hf.config, command.world_size


def parse(ds_config: dict[str, Any], data_parallel_size: int) -> Any:
    """`DeepSpeedConfig` of `ds_config` for `data_parallel_size` ranks (no process group needed)."""
    from deepspeed.runtime import config as ds_config_module

    mpu = types.SimpleNamespace(get_data_parallel_world_size=lambda: data_parallel_size)
    with mock.patch.object(ds_config_module.dist, "get_rank", return_value=0):
        return ds_config_module.DeepSpeedConfig(ds_config, mpu=mpu)


def _device(offload: Any) -> str | None:
    if not offload:
        return None
    return str(getattr(offload.device, "value", offload.device))


def summary(parsed: Any) -> dict[str, Any]:
    z = parsed.zero_config
    return {"world_size": parsed.world_size, "train_batch_size": parsed.train_batch_size,
            "micro_batch_per_gpu": parsed.train_micro_batch_size_per_gpu,
            "gradient_accumulation_steps": parsed.gradient_accumulation_steps, "zero_stage": int(z.stage),
            "offload_optimizer": _device(z.offload_optimizer), "offload_param": _device(z.offload_param),
            "bf16": bool(parsed.bfloat16_config.enabled), "gradient_clipping": parsed.gradient_clipping}


def main(argv: list[str] | None = None) -> int:
    from xcoder.config import compose

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden-size", type=int, required=True, help="the model's hidden size (fills bucket sizes)")
    ap.add_argument("--data-parallel-size", type=int, default=None,
                    help="parse for this many data-parallel ranks instead of the launch's (what-if)")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, as for `xcoder sft`")
    ns = ap.parse_args(argv)
    cfg = compose(list(ns.overrides))
    ds, world = resolve(cfg, hidden_size=ns.hidden_size)
    dp = ns.data_parallel_size or world // int(cfg.sft.swift.sequence_parallel_size or 1)
    try:
        parsed = parse(ds, dp)
    except (AssertionError, ValueError) as exc:  # DeepSpeed's parser asserts its invariants
        log.error("DeepSpeed rejects the config for %d data-parallel ranks: %s", dp, exc)
        return 1
    print(json.dumps(summary(parsed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
