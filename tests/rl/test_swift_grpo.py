"""ms-swift GRPO backend on CPU: real `swift rlhf --rlhf_type grpo` steps on a tiny model with the
judge as reward (external ORM plugin); the rewards swift logs are the ones the judge produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import code_policy, write_sum_parquet


def test_dry_run_renders_swift_rlhf_with_our_plugin(capsys):
    from xcoder.registry import stage_cli
    main = stage_cli("rl")

    assert main(["experiment=demo", "rl.backend=swift", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert " rlhf --rlhf_type grpo " in out and "--reward_funcs xcoder_code" in out
    assert "swift_plugin.py" in out and "XCODER_RL_REWARD_SETTINGS=" in out and "--num_generations 4" in out


@pytest.mark.slow
def test_swift_grpo_steps_with_judge_reward(tiny_model, tmp_path):
    policy = code_policy(Path(tiny_model), tmp_path / "policy")
    data = write_sum_parquet(tmp_path / "rl.parquet", copies=4)
    out = tmp_path / "rl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1"}
    cmd = [str(Path(sys.executable).with_name("xcoder")), "rl", "experiment=demo", "rl.backend=swift",
           f"rl.model_path={policy}",
           f"rl.data.train_files=[{data}]", f"rl.output_dir={out}", "rl.swift.max_steps=2", "rl.swift.save_steps=2",
           "rl.swift.system=null"]  # code_policy learnt the prompt with swift's default system message
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    judged = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert len(judged) == 2 * 4  # 2 steps x 4 rollouts, every one graded by our reward
    assert any(j["graded"] > 0 and j["verdicts"] for j in judged), judged  # programs actually ran in the judge
    assert all(not j["judge_error"] for j in judged)
    logged = [json.loads(line) for line in (out / "checkpoints" / "logging.jsonl").read_text().splitlines()]
    steps = [entry for entry in logged if "reward" in entry]
    assert len(steps) == 2
    for step, entry in enumerate(steps):
        mine = [j["score"] for j in judged if j["call"] == step]
        assert entry["reward"] == pytest.approx(sum(mine) / len(mine), abs=1e-4)
    final = out / "final_hf"
    assert final.is_symlink() and (final / "config.json").exists()
