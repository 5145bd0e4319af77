"""One Hydra config tree for every stage: composition, printing and the repo-root resolver.

Stages receive a composed `DictConfig` in struct mode, so a typo in an override is an error
(`Key 'x' is not in struct`) rather than a silently ignored knob.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"

if not OmegaConf.has_resolver("xcoder.root"):
    OmegaConf.register_new_resolver("xcoder.root", lambda: str(REPO_ROOT))


class ConfigError(ValueError):
    """The requested configuration does not compose (unknown key, group option or bad value)."""


# Maps whose keys are the user's own names (a window is called whatever the user likes). Hydra merges
# a dict override into the existing map, and struct mode refuses a new key, so `eval.windows={early:
# {...}}` would fail; for these keys an override replaces the whole map, as the READMEs document.
REPLACED_MAPS: tuple[str, ...] = ("eval.windows",)


def expand_overrides(overrides: Sequence[str]) -> list[str]:
    """Rewrite `key=value` for a key in REPLACED_MAPS into Hydra's delete-then-add pair."""
    out: list[str] = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key in REPLACED_MAPS:
            out += [f"~{key}", f"+{key}={value}"]
        else:
            out.append(override)
    return out


def compose(overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """Compose `configs/config.yaml` with command-line style overrides (`key=value`, `group=option`)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="xcoder"):
            cfg = hydra_compose(
                config_name="config", overrides=expand_overrides(overrides), return_hydra_config=return_hydra_config
            )
    except Exception as exc:  # hydra raises several exception types; all mean "bad request"
        raise ConfigError(f"cannot compose config with overrides {list(overrides)}: {exc}") from exc
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.set_struct(cfg, True)
    return cfg


def to_yaml(cfg: DictConfig, resolve: bool = True) -> str:
    """Render a config, resolving interpolations so users see the values a stage will use."""
    return OmegaConf.to_yaml(cfg, resolve=resolve)


def leaf_keys(cfg: DictConfig, prefix: str = "") -> set[str]:
    """Dotted paths of every leaf, for comparing config shapes (used by the experiment key check)."""
    keys: set[str] = set()
    for key in cfg.keys():
        path = f"{prefix}{key}"
        node = cfg._get_node(key)
        if OmegaConf.is_dict(node):
            keys |= leaf_keys(node, f"{path}.")  # type: ignore[arg-type]
        else:
            keys.add(path)
    return keys
