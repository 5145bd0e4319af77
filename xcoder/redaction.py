"""Masking secrets in environment variables before they are printed, logged or written to a manifest.

Launch commands are shown as `VAR=value ... cmd` lines (dry runs, logs, manifest.json). Users put API
keys into `sft.env` / `rl.env` (e.g. WANDB_API_KEY, HF_TOKEN); those values must reach the child
process but never any text we print or store. The variable's NAME decides: anything that looks like
a key, token, secret, password or credential is shown as `***`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True when an environment variable named `name` should never be shown."""
    return bool(SECRET_NAME.search(str(name)))


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` for display: secret-named values replaced by `***` (use the original to launch)."""
    return {k: (MASK if is_secret_name(k) else v) for k, v in env.items()}


def mask_config(conf: Any) -> Any:
    """A plain config container for manifests: every mapping under a key named `env` goes through `mask_env`."""
    if isinstance(conf, Mapping):
        return {k: (mask_env({str(ek): ev for ek, ev in v.items()}) if k == "env" and isinstance(v, Mapping)
                    else mask_config(v)) for k, v in conf.items()}
    if isinstance(conf, list):
        return [mask_config(v) for v in conf]
    return conf
