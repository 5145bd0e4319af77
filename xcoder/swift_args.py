"""Config values as ms-swift command-line flags, shared by `swift sft` (SFT) and `swift rlhf` (RL GRPO).

Why in the core: both stages launch ms-swift from a config group of its own flags; one formatter
keeps their argv syntax identical without one stage importing the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf


def format_value(value: Any) -> list[str]:
    """A config value as ms-swift argv tokens (HfArgumentParser syntax)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, float):
        return [repr(value)]  # 5e-05, 0.03, 1.0: round-trips exactly
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in format_value(v)]
    return [str(value)]


def swift_flags(swift_cfg: Mapping[str, Any] | DictConfig) -> list[str]:
    """`--key value` for every non-null key of a `*.swift` config group, in config order."""
    plain = OmegaConf.to_container(swift_cfg, resolve=True) if OmegaConf.is_config(swift_cfg) else dict(swift_cfg)
    flags: list[str] = []
    for key, value in plain.items():  # type: ignore[union-attr]
        if value is None:
            continue
        if isinstance(value, dict):
            flags += [f"--{key}", json.dumps(value)]
            continue
        flags += [f"--{key}", *format_value(value)]
    return flags
