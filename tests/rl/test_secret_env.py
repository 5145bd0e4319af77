"""Secrets in `rl.env` reach the trainer's environment but never the printed/stored command lines."""

from __future__ import annotations

import pytest

from xcoder.registry import stage_cli
from xcoder.rl.stage import _env_prefix

main = stage_cli("rl")

SECRET = "sk-SECRET-rl-4711"


@pytest.mark.parametrize("backend", ["verl", "swift"])
def test_rl_env_secret_is_masked_in_dry_run(backend, capsys):
    assert main(["experiment=demo", f"rl.backend={backend}", f"+rl.env.WANDB_API_KEY={SECRET}",
                 "+rl.env.HF_TOKEN=hf_secret_token", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "WANDB_API_KEY='***'" in out and "HF_TOKEN='***'" in out
    assert SECRET not in out and "hf_secret_token" not in out


def test_env_prefix_used_for_logs_and_manifest_masks_by_name_and_keeps_the_rest():
    env = {"WANDB_API_KEY": SECRET, "XCODER_RL_REWARD_LOG": "/tmp/r.jsonl", "judge_token": "t0k"}
    assert _env_prefix(env) == "WANDB_API_KEY='***' XCODER_RL_REWARD_LOG=/tmp/r.jsonl judge_token='***'"
    assert env["WANDB_API_KEY"] == SECRET  # the launch env is untouched
