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


SHARED_RL_KNOBS = {  # rl.swift key -> the rl.verl (or rl.verl_added) knob it must follow
    "num_generations": "verl.actor_rollout_ref.rollout.n",
    "learning_rate": "verl.actor_rollout_ref.actor.optim.lr",
    "warmup_ratio": "verl.actor_rollout_ref.actor.optim.lr_warmup_steps_ratio",
    "weight_decay": "verl.actor_rollout_ref.actor.optim.weight_decay",
    "max_grad_norm": "verl.actor_rollout_ref.actor.grad_clip",
    "beta": "verl.actor_rollout_ref.actor.kl_loss_coef",
    "epsilon": "verl.actor_rollout_ref.actor.clip_ratio_low",
    "epsilon_high": "verl.actor_rollout_ref.actor.clip_ratio_high",
    "temperature": "verl.actor_rollout_ref.rollout.temperature",
    "top_p": "verl.actor_rollout_ref.rollout.top_p",
    "repetition_penalty": "verl_added.actor_rollout_ref.rollout.repetition_penalty",
    "max_completion_length": "verl.data.max_response_length",
    "num_train_epochs": "verl.trainer.total_epochs",
    "save_steps": "verl.trainer.save_freq",
}


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if "sft" not in e])
def test_swift_rl_hyperparameters_follow_verl(experiment):
    """One place for a shared RL knob: swift interpolates verl's value, in every experiment."""
    cfg = compose([f"experiment={experiment}"])
    for key, verl_key in SHARED_RL_KNOBS.items():
        assert cfg.rl.swift[key] == OmegaConf.select(cfg.rl, verl_key), (key, verl_key)
    changed = compose([f"experiment={experiment}", "rl.verl.actor_rollout_ref.actor.optim.lr=1.5e-6"])
    assert changed.rl.swift.learning_rate == 1.5e-6
