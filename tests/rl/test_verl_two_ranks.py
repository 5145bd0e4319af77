"""Stock verl with two FSDP ranks on one CPU machine: `xcoder rl experiment=demo rl.cpu=true
rl.gpus_per_node=2` -> `trainer.n_gpus_per_node=2`, Ray with 2 logical GPUs, one gloo group of world
size 2 (xcoder/rl/verl_cpu), one hf rollout replica per rank.

Checks what a cluster run would first get wrong between processes, from verl's own output:
* two WorkerDict processes form the group: each saves its own shard `model_world_size_2_rank_{0,1}.pt`;
* both ranks update: each rank's shard differs from the same slice of the starting policy (FSDP2:
  a rank's optimizer steps only its own shard), with a non-zero gradient norm on every step;
* the weight sync reaches BOTH rollout servers after the update (`hf rollout server {0,1}: loaded ...
  (step 1)`), and step 2's rollout log-probs agree with what the trained actor recomputes;
* the two shards merge (verl's model merger) into the checkpoint eval loads.
The learning-signal policy (helpers.mixed_policy) is used so rewards differ within a group and the
update is not zero. A hard timeout bounds the run; the private Ray dir is removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import kill_private_run, mixed_policy, write_sum_parquet

TIMEOUT = 900
STEPS = 2
XCODER = [sys.executable, "-m", "xcoder.cli", "rl"]


@pytest.fixture
def ray_dir():
    d = Path("/tmp") / f"xr-{os.getpid()}-2r"  # short: Ray's unix sockets live under it (< 107 bytes)
    d.mkdir(parents=True, exist_ok=True)
    yield str(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
def test_verl_grpo_two_fsdp_ranks_over_gloo(tiny_model, tmp_path, ray_dir):
    import torch
    from transformers import AutoModelForCausalLM

    policy = mixed_policy(Path(tiny_model), tmp_path / "policy")
    data = write_sum_parquet(tmp_path / "rl.parquet", copies=2 * STEPS)  # 2 prompts per step
    out = tmp_path / "rl"
    args = ["experiment=demo", "rl.backend=verl", "rl.cpu=true", "rl.gpus_per_node=2", f"rl.model_path={policy}",
            f"rl.data.train_files=[{data}]", f"rl.output_dir={out}", f"rl.cpu_ray_temp_dir={ray_dir}",
            "rl.data.system_prompt=null",  # the warm-up learnt the prompt without the demo SFT system message
            "rl.verl.data.train_batch_size=2", "rl.verl.data.max_prompt_length=64",
            "rl.verl.data.max_response_length=48", "rl.verl.actor_rollout_ref.rollout.n=8",
            "rl.verl.actor_rollout_ref.rollout.temperature=0.7", "rl.verl.actor_rollout_ref.actor.optim.lr=1e-3",
            f"rl.verl.trainer.save_freq={STEPS}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "RAY_DEDUP_LOGS": "0"}  # every rank's and every server's lines, not "[repeated 2x across cluster]"
    proc = subprocess.Popen([*XCODER, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        text, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_private_run(proc, ray_dir)
        pytest.fail(f"two-rank verl run exceeded {TIMEOUT} s")
    assert proc.returncode == 0, text[-4000:]

    # the launch: two logical GPUs, two FSDP ranks, two rollout replicas
    assert "trainer.n_gpus_per_node=2" in text and "+ray_kwargs.ray_init.num_gpus=2" in text
    assert "LLMServerManager: ['hf_server_0_0.ray', 'hf_server_1_0.ray']" in text
    ckpt = out / "checkpoints"
    actor = ckpt / f"global_step_{STEPS}" / "actor"
    for rank in (0, 1):
        assert re.search(rf"\[Rank {rank}\] Saved model to \S*model_world_size_2_rank_{rank}\.pt", text)
    assert sorted(p.name for p in actor.glob("model_world_size_*.pt")) == \
        ["model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"]
    saver_pids = set(re.findall(r"\(WorkerDict pid=(\d+)\)[^\n]*\[Rank \d\] Saved model", text))
    assert len(saver_pids) == 2  # two processes, one per rank

    # both ranks updated their own shard
    start = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32).state_dict()
    for rank in (0, 1):
        shard = torch.load(actor / f"model_world_size_2_rank_{rank}.pt", map_location="cpu", weights_only=False)
        changed = 0
        for name, tensor in shard.items():
            local = tensor._local_tensor if hasattr(tensor, "_local_tensor") else tensor
            mine = torch.chunk(start[name], 2, dim=0)[rank]  # FSDP2 Shard(0)
            assert local.shape == mine.shape, (name, local.shape, mine.shape)
            changed += int(not torch.allclose(local.float(), mine, atol=1e-6))
        assert changed >= len(shard) // 2, f"rank {rank}: only {changed} of {len(shard)} tensors moved"

    rows = [json.loads(line) for f in sorted((ckpt / "metrics").glob("launch-*.jsonl"))
            for line in f.read_text().splitlines()]
    steps = [{"step": r["step"], **r["data"]} for r in rows if "actor/grad_norm" in r.get("data", {})]
    assert [s["step"] for s in steps] == [1, 2]
    print("two ranks:", [{k: s.get(k) for k in ("step", "actor/grad_norm", "critic/score/mean",
                                                  "training/rollout_probs_diff_mean")} for s in steps])
    assert all(float(s["actor/grad_norm"]) > 0 for s in steps), steps
    # weight sync after step 1's update reached both servers, and step 2 sampled from those weights
    for server in (0, 1):
        assert re.search(rf"hf rollout server {server}: loaded \d+ tensors \(step 1\)", text), server
    # sanity (float32 numerics of batched left-padded generation vs the actor's forward: measured 0.0004-0.0012)
    assert float(steps[1]["training/rollout_probs_diff_mean"]) < 0.01, steps[1]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done"
    AutoModelForCausalLM.from_pretrained(manifest["final_checkpoint"])  # the two shards merged for eval
