"""Our verl overrides against stock verl 0.9.1: its own config tree, validator, reward loader and
GRPO advantage. Also the exact dry-run command of both paper recipes."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from xcoder.config import compose as xcoder_compose
from xcoder.rl.verl_cmd import verl_overrides

from .helpers import SUM_ANSWER, stdio_truth, sum_tests


def _verl_config(overrides):
    import verl
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer/config"), version_base=None):
            return compose("ppo_trainer", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def _check_type(key, default, value):
    """Our value must have the kind of verl's default: bool, number (verl's YAML writes floats as
    `0`/`1`, so int and float are one kind), string, list or mapping."""
    if default is None or value is None or key in ("data.train_files", "data.val_files"):  # verl: str or list
        return
    kinds = ((bool,), (int, float), (str,), (list, tuple), (dict,))
    from omegaconf import DictConfig, ListConfig

    def kind(v):
        if isinstance(v, ListConfig):
            return 3
        if isinstance(v, DictConfig):
            return 4
        return next(i for i, k in enumerate(kinds) if isinstance(v, k))

    assert kind(value) == kind(default), f"{key}: {value!r} ({type(value).__name__}) vs verl default {default!r}"


@pytest.mark.parametrize("experiment", ["paper_qwen25_7b_rl", "paper_qwen3_8b_rl"])
@pytest.mark.parametrize("reward_backend", ["xcoder", "sandbox_fusion"])
def test_overrides_compose_with_stock_verl_and_pass_its_validator(experiment, reward_backend):
    from verl.trainer.main_ppo import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    cfg = xcoder_compose([f"experiment={experiment}", f"rl.reward.backend={reward_backend}"])
    overrides = verl_overrides(cfg.rl, ["/data/train.parquet"], ["/data/val.parquet"])
    base = _verl_config([])
    composed = _verl_config(overrides)  # unknown keys (without '+') raise here: struct mode
    for item in overrides:
        key = item.split("=", 1)[0]
        if key.startswith("+"):
            continue
        _check_type(key, OmegaConf.select(base, key), OmegaConf.select(composed, key))
    validate_config(composed, use_reference_policy=need_reference_policy(composed), use_critic=need_critic(composed))
    rollout = omega_conf_to_dataclass(composed.actor_rollout_ref.rollout)  # the '+' keys are real dataclass fields
    omega_conf_to_dataclass(composed.algorithm)
    assert rollout.repetition_penalty == cfg.rl.verl_added.actor_rollout_ref.rollout.repetition_penalty


def test_unknown_verl_key_is_rejected():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        _verl_config(["actor_rollout_ref.actor.clip_ratio_hgih=0.3"])


PAPER = {
    "paper_qwen25_7b_rl": {
        "algorithm.adv_estimator": "grpo", "actor_rollout_ref.rollout.n": 8, "data.train_batch_size": 512,
        "actor_rollout_ref.actor.ppo_mini_batch_size": 128, "data.max_prompt_length": 2500,
        "data.max_response_length": 30196, "actor_rollout_ref.rollout.max_model_len": 32768,
        "actor_rollout_ref.actor.optim.lr": 4e-7, "actor_rollout_ref.actor.use_kl_loss": False,
        "actor_rollout_ref.actor.clip_ratio_high": 0.28, "actor_rollout_ref.actor.clip_ratio_low": 0.2,
        "actor_rollout_ref.actor.clip_ratio_c": 3.0, "actor_rollout_ref.actor.entropy_coeff": 0.001,
        "actor_rollout_ref.rollout.temperature": 1.0, "actor_rollout_ref.rollout.repetition_penalty": 1.0,
        "trainer.total_epochs": 3, "trainer.save_freq": 10, "trainer.nnodes": 1, "trainer.n_gpus_per_node": 8,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
        "actor_rollout_ref.rollout.gpu_memory_utilization": 0.85,
        "actor_rollout_ref.rollout.enforce_eager": True, "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": 1,
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 35000, "data.shuffle": True,
        "reward.custom_reward_function.reward_kwargs.k": 10, "reward.custom_reward_function.reward_kwargs.time_s": 10.0,
        "reward.custom_reward_function.reward_kwargs.memory_mb": 256,
    },
    "paper_qwen3_8b_rl": {
        "data.train_batch_size": 128, "data.max_prompt_length": 2048, "data.max_response_length": 30720,
        "actor_rollout_ref.rollout.max_model_len": 30720, "actor_rollout_ref.actor.optim.lr": 3e-7,
        "actor_rollout_ref.actor.use_kl_loss": True, "actor_rollout_ref.actor.kl_loss_coef": 0.01,
        "actor_rollout_ref.actor.kl_loss_type": "low_var_kl", "actor_rollout_ref.actor.clip_ratio_high": 0.2,
        "actor_rollout_ref.rollout.repetition_penalty": 1.15, "trainer.total_epochs": 5, "trainer.save_freq": 5,
        "trainer.nnodes": 2, "actor_rollout_ref.rollout.n": 8, "actor_rollout_ref.actor.ppo_mini_batch_size": 128,
    },
}


@pytest.mark.parametrize("experiment", sorted(PAPER))
def test_dry_run_prints_the_paper_values(experiment, capsys):
    from xcoder.registry import stage_cli
    main = stage_cli("rl")

    assert main([f"experiment={experiment}", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    train = next(line for line in lines if "verl.trainer.main_ppo" in line)
    args = shlex.split(train)
    overrides = [a.lstrip("+") for a in args[args.index("verl.trainer.main_ppo") + 1:]]
    composed = _verl_config([a for a in args[args.index("verl.trainer.main_ppo") + 1:]])
    for key, want in PAPER[experiment].items():
        assert any(o.startswith(key + "=") for o in overrides), key
        got = OmegaConf.select(composed, key)
        assert got == want and type(got) is type(want), f"{key}: {got!r} != paper {want!r}"
    merge = next(line for line in lines if "verl.model_merger" in line)
    assert " merge --backend fsdp --local_dir " in merge and merge.endswith(f"/outputs/{experiment}/rl/final_hf")


def test_curriculum_keeps_pass_rate_order():
    cfg = xcoder_compose(["experiment=paper_qwen25_7b_rl", "rl.data.curriculum=true"])
    over = verl_overrides(cfg.rl, ["/t.parquet"], None)
    assert "data.shuffle=false" in over and "data.shuffle=true" not in over
    assert "trainer.test_freq=-1" in over  # no validation files: never validate on training data


def test_our_reward_through_verls_get_custom_reward_fn():
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = xcoder_compose(["experiment=paper_qwen25_7b_rl", "rl.reward.judge.workers=2"])
    composed = _verl_config(verl_overrides(cfg.rl, ["/t.parquet"], None))
    fn = get_custom_reward_fn(composed)
    truth = stdio_truth(sum_tests(12))
    good = fn(data_source="xcoder_synth", solution_str=SUM_ANSWER, ground_truth=truth,
              extra_info={"task_id": "t", "num_turns": None, "rollout_reward_scores": {}})
    bad = fn(data_source="xcoder_synth", solution_str="```python\nprint(0)\n```", ground_truth=truth,
             extra_info={"task_id": "t"})
    assert good["score"] == 5.0 and good["sampled"] == 10.0
    assert bad["score"] == 0.0 and bad["verdict_WA"] == 10.0


def test_grpo_advantage_on_our_rewards_for_a_group_of_rollouts():
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    from xcoder.rl.reward import CodeReward, RewardItem, RewardSettings

    truth = stdio_truth(sum_tests(4))
    responses = [SUM_ANSWER, "```python\nprint(6)\n```", "no code", SUM_ANSWER,   # prompt A
                 "```python\nraise SystemExit(1)\n```", SUM_ANSWER]             # prompt B
    uids = ["A", "A", "A", "A", "B", "B"]
    reward = CodeReward(RewardSettings.defaults(judge_workers=2))
    try:
        res = reward.score_batch([RewardItem(str(i), r, truth, {"task_id": u}) for i,
                                  (r, u) in enumerate(zip(responses, uids))])
    finally:
        reward.close()
    scores = torch.tensor([res[str(i)].score for i in range(len(responses))])
    assert scores.tolist() == [5.0, 1.25, -2.0, 5.0, 0.0, 5.0]
    length = 5
    mask = torch.ones(len(responses), length)
    mask[2, 3:] = 0
    token_rewards = torch.zeros(len(responses), length)
    token_rewards[torch.arange(len(responses)), mask.sum(-1).long() - 1] = scores  # reward on the last token
    adv, ret = compute_grpo_outcome_advantage(token_rewards, mask, index=np.array(uids, dtype=object))
    a = scores[:4]
    expected_a = (a - a.mean()) / (a.std(unbiased=True) + 1e-6)
    b = scores[4:]
    expected_b = (b - b.mean()) / (b.std(unbiased=True) + 1e-6)
    expected = torch.cat([expected_a, expected_b])
    assert torch.allclose(adv[:, 0], expected, atol=1e-5)
    assert torch.all(adv[2, 3:] == 0)  # masked tokens get nothing
