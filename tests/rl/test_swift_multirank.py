"""ms-swift GRPO with two processes on CPU: `NPROC_PER_NODE=2 xcoder rl rl.backend=swift` -> swift
starts torchrun with 2 ranks (gloo; `use_cpu` makes transformers treat them as one group, as for SFT).

Checks what a cluster run would first get wrong between processes: one group of world size 2, the
global batch (4 completions per rank x 2 ranks = 8, what transformers logs), each rank judging its
own prompt group with our reward plugin, and the reward swift logs being the mean over BOTH ranks'
judged completions (gathered across processes). A hard subprocess timeout bounds the run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import code_policy, write_sum_parquet

LAUNCH_VARS = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE", "WORLD_SIZE", "RANK",
               "LOCAL_RANK")


@pytest.mark.slow
def test_swift_grpo_two_processes_gather_rewards(tiny_model, tmp_path):
    policy = code_policy(Path(tiny_model), tmp_path / "policy")
    data = write_sum_parquet(tmp_path / "rl.parquet", copies=4)
    out = tmp_path / "rl"
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS} | {
        "HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1", "NPROC_PER_NODE": "2"}
    cmd = [str(Path(sys.executable).with_name("xcoder")), "rl", "experiment=demo", "rl.backend=swift",
           f"rl.model_path={policy}", f"rl.data.train_files=[{data}]", f"rl.output_dir={out}", "rl.swift.max_steps=2",
           "rl.swift.save_steps=2", "rl.swift.system=null", "+rl.swift.use_cpu=true", "+rl.swift.log_level=info"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert "world_size: 2, local_world_size: 2" in text
    assert re.findall(r"Total train batch size \(w\. parallel, distributed & accumulation\) = (\d+)", text) == ["8"]

    judged = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert len(judged) == 2 * 8  # 2 steps x (4 completions x 2 ranks), every one graded by our reward
    for step in (0, 1):
        assert len({j["task_id"] for j in judged if j["call"] == step}) == 2  # one prompt group per rank
    assert any(j["graded"] > 0 and j["verdicts"] for j in judged), judged
    assert all(not j["judge_error"] for j in judged)
    logged = [e for e in map(json.loads, (out / "checkpoints" / "logging.jsonl").read_text().splitlines())
              if "reward" in e]
    assert len(logged) == 2
    for step, entry in enumerate(logged):
        both_ranks = [j["score"] for j in judged if j["call"] == step]
        assert entry["reward"] == pytest.approx(sum(both_ranks) / len(both_ranks), abs=1e-4)
    assert (out / "final_hf" / "config.json").exists()
