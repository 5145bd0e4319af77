"""The Hydra tree composes for every experiment, rejects unknown keys and chains stage paths."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from xcoder.config import CONFIG_DIR, ConfigError, compose, leaf_keys

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def test_paper_and_demo_experiments_exist():
    for name in ("demo", "paper_qwen25_7b", "paper_qwen3_8b", "paper_qwen25_7b_sft",
                 "paper_qwen3_8b_sft", "paper_qwen25_7b_rl", "paper_qwen3_8b_rl"):
        assert name in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_resolves(experiment):
    cfg = compose([f"experiment={experiment}"])
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert cfg.run.name


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_only_sets_known_keys(experiment):
    """An experiment may pick group options and change values, never invent keys: a typo in an
    override file would otherwise be silently ignored by the stage that should read it."""
    full = compose([f"experiment={experiment}"], return_hydra_config=True)
    choices = {k: v for k, v in full.hydra.runtime.choices.items()
               if not k.startswith("hydra") and k != "experiment" and v is not None}
    base = compose([f"{k}={v}" for k, v in choices.items()])
    extra = {k for k in leaf_keys(full) - leaf_keys(base) if not k.startswith("hydra.")}
    assert not extra, f"experiment {experiment} sets keys no config group declares: {sorted(extra)}"


def test_unknown_override_key_is_an_error():
    with pytest.raises(ConfigError, match="no_such_knob"):
        compose(["synth.no_such_knob=1"])


def test_unknown_group_option_is_an_error():
    with pytest.raises(ConfigError):
        compose(["cluster=no_such_cluster"])


def test_stage_outputs_chain_by_interpolation():
    cfg = compose(["run.name=chain"])
    assert cfg.sft.data.train_parquet == cfg.synth.sft_parquet
    assert cfg.rl.data.train_files == cfg.synth.rl_parquet
    assert cfg.rl.model_path == cfg.sft.final_checkpoint
    assert cfg.eval.model_path == cfg.rl.final_checkpoint
    assert cfg.synth.output_dir.startswith("outputs/chain")


def test_window_override_replaces_the_map_and_stays_struct():
    cfg = compose(['eval.windows={early: {start: "2024-08-01", end: "2024-09-01"}}'])
    assert OmegaConf.to_container(cfg.eval.windows) == {"early": {"start": "2024-08-01", "end": "2024-09-01"}}
    with pytest.raises(Exception, match="not in struct"):
        cfg.eval.windows.typo = 1
    assert compose(["eval.windows=null"]).eval.windows is None
    demo = compose(["experiment=demo", 'eval.windows={w: {start: "2025-01-01", end: null}}'])
    assert list(demo.eval.windows) == ["w"]
