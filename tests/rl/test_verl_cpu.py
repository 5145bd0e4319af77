"""The verl CPU backend (xcoder/rl/verl_cpu): switched on only for CPU launches, composes with stock
verl 0.9.1, its patches fail loudly when verl changes, and the paper launches are byte-identical to
the ones before the backend existed (fixtures captured from the code before it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from xcoder.config import compose as xcoder_compose
from xcoder.rl.verl_cmd import verl_env, verl_overrides
from xcoder.rl.verl_cpu.profile import cpu_enabled

from .test_verl import _check_type, _verl_config

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("data") / "dry_run"
XCODER = [sys.executable, "-m", "xcoder.cli"]

DRY_RUNS = [
    ("rl_paper_qwen25_7b_rl.txt", ["rl", "experiment=paper_qwen25_7b_rl", "cluster=slurm", "--dry-run"]),
    ("rl_paper_qwen3_8b_rl.txt", ["rl", "experiment=paper_qwen3_8b_rl", "cluster=slurm", "--dry-run"]),
    ("pipeline_paper_qwen25_7b.txt", ["pipeline", "experiment=paper_qwen25_7b", "cluster=slurm", "--dry-run"]),
]


@pytest.mark.parametrize("fixture,argv", DRY_RUNS, ids=[d[0] for d in DRY_RUNS])
def test_paper_dry_runs_are_byte_identical_to_before_the_cpu_backend(fixture, argv):
    proc = subprocess.run([*XCODER, *argv], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the fixtures were captured in the repository with .venv/bin/python; paths are normalised
    out = proc.stdout.replace(sys.executable, "<PYTHON>").replace(str(REPO), "<ROOT>")
    assert out == (FIXTURES / fixture).read_text()


def _plan(overrides):
    cfg = xcoder_compose(overrides)
    return cfg, verl_overrides(cfg.rl, ["/data/train.parquet"], None), verl_env(cfg.rl)


def test_cpu_profile_is_on_for_the_demo_and_off_for_gpu_recipes():
    _, demo, demo_env = _plan(["experiment=demo"])
    assert "actor_rollout_ref.rollout.name=hf" in demo and "trainer.use_v1=false" in demo
    assert "+ray_kwargs.ray_init.num_gpus=1" in demo and "trainer.n_gpus_per_node=1" in demo
    assert any(o.startswith("+ray_kwargs.ray_init._temp_dir=/tmp/xcoder-ray-") for o in demo)
    assert demo_env["VERL_USE_EXTERNAL_MODULES"] == "xcoder.rl.verl_cpu" and demo_env["VERL_PLATFORM"] == "cpu"
    for experiment in ("paper_qwen25_7b_rl", "paper_qwen3_8b_rl"):
        cfg, paper, env = _plan([f"experiment={experiment}"])
        assert not cpu_enabled(cfg.rl)
        assert "actor_rollout_ref.rollout.name=vllm" in paper and not any("ray_init" in o for o in paper)
        assert not any(k.startswith("VERL_") for k in env)
    # explicit knob both ways
    _, forced_off, env_off = _plan(["experiment=demo", "rl.cpu=false"])
    assert "actor_rollout_ref.rollout.name=hf" not in forced_off and "VERL_PLATFORM" not in env_off
    cfg, forced_on, _ = _plan(["experiment=paper_qwen25_7b_rl", "rl.cpu=true"])
    assert "actor_rollout_ref.rollout.name=hf" in forced_on
    with pytest.raises(ValueError, match="rl.cpu must be"):
        cpu_enabled(xcoder_compose(["experiment=demo", "rl.cpu=maybe"]).rl)


def test_cpu_overrides_compose_with_stock_verl_and_pass_its_validator():
    from verl.trainer.main_ppo import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    _, overrides, _ = _plan(["experiment=demo"])
    base, composed = _verl_config([]), _verl_config(overrides)
    for item in overrides:
        key = item.split("=", 1)[0]
        if not key.startswith("+"):
            _check_type(key, OmegaConf.select(base, key), OmegaConf.select(composed, key))
    validate_config(composed, use_reference_policy=need_reference_policy(composed), use_critic=need_critic(composed))
    assert omega_conf_to_dataclass(composed.actor_rollout_ref.rollout).name == "hf"
    assert "file" in composed.trainer.logger


def test_install_registers_platform_rollout_and_patch():
    from verl.plugin.platform.platform_manager import PlatformRegistry
    from verl.utils import distributed
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY, get_rollout_class
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from xcoder.rl import verl_cpu

    before = distributed.initialize_global_process_group_ray.__defaults__
    try:
        verl_cpu.install()
        verl_cpu.install()  # idempotent
        platform = PlatformRegistry.get("cpu")()
        assert (platform.device_name, platform.communication_backend_name(), platform.ray_resource_name()) == \
            ("cpu", "gloo", "GPU")
        assert platform.current_device() == "cpu" and platform.device_module.memory_allocated() == 0
        assert distributed.initialize_global_process_group_ray.__defaults__ == (None, "cpu:gloo")
        assert get_rollout_class("hf").__name__ == "HFServerAdapter"
        assert RolloutReplicaRegistry.get("hf").__name__ == "HFReplica"
    finally:
        distributed.initialize_global_process_group_ray.__defaults__ = before
        _ROLLOUT_REGISTRY.pop(("hf", "async"), None)


def test_patch_guards_fail_loudly_when_verl_changes(monkeypatch):
    import verl

    from xcoder.rl.verl_cpu import patches

    def changed(timeout_second=None, backend=None, extra=None):
        return None

    with pytest.raises(patches.VerlPatchError, match="initialize_global_process_group_ray changed"):
        patches.check_process_group_init(changed)
    with pytest.raises(patches.VerlPatchError, match="_ROLLOUT_REGISTRY changed"):
        patches.check_rollout_registry({("sglang", "async"): "x.Y"})
    with pytest.raises(patches.VerlPatchError, match="_ROLLOUT_REGISTRY changed"):
        patches.check_rollout_registry(None)
    monkeypatch.setattr(verl, "__version__", "0.9.2")
    with pytest.raises(patches.VerlPatchError, match="verl==0.9.1"):
        patches.check_verl_version()


def test_hf_server_generates_with_logprobs_and_loads_weights(tiny_model):
    """The rollout server without Ray: batched sampling, per-token log-probs, eos stop, weight sync."""
    import asyncio

    import torch
    from transformers import AutoModelForCausalLM

    from xcoder.rl.verl_cpu.hf_rollout import HFRolloutServer

    server = HFRolloutServer({"prompt_length": 16, "response_length": 8, "seed": 0},
                             {"local_path": str(tiny_model)}, replica_rank=0)

    async def run():
        params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
        return await asyncio.gather(*[server.generate([1, 2, 3][: i + 1], dict(params), f"r{i}") for i in range(3)])

    outs = asyncio.run(run())
    assert server.batches == 1  # the three concurrent requests were one batch
    for out in outs:
        assert 1 <= len(out.token_ids) <= 8 and len(out.log_probs) == len(out.token_ids)
        assert all(lp <= 0 for lp in out.log_probs)
    trained = AutoModelForCausalLM.from_pretrained(tiny_model)
    state = {k: torch.zeros_like(v) for k, v in trained.state_dict().items() if not k.endswith("lm_head.weight")}
    assert server.load_weights(state, global_steps=3) == len(state)
    assert float(server.model.model.embed_tokens.weight.abs().sum()) == 0.0 and server.global_steps == 3
    with pytest.raises(RuntimeError, match="weight sync"):
        server.load_weights({"no.such.weight": torch.zeros(1)})


def test_system_prompt_view_for_verl_only(tmp_path):
    """The demo's verl prompts carry the SFT system message (swift gets it from rl.swift.system);
    rows are otherwise unchanged, and the paper recipes (system_prompt null) train on the rows as they are."""
    from xcoder.records import RLRow, read_table
    from xcoder.rl.stage import planned_data, prepare_data

    from .helpers import write_sum_parquet

    data = write_sum_parquet(tmp_path / "rl.parquet", copies=2)
    base = ["experiment=demo", f"rl.data.train_files=[{data}]", f"rl.output_dir={tmp_path}/rl"]
    cfg = xcoder_compose(base)
    train, _ = prepare_data(cfg.rl)
    assert train == [f"{tmp_path}/rl/data/train.parquet"] == planned_data(cfg.rl)[0]
    rows = read_table(train[0], RLRow).to_pylist()
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    assert rows[0]["prompt"][0]["content"] == cfg.rl.swift.system
    assert planned_data(xcoder_compose([*base, "rl.backend=swift"]).rl)[0] == [str(data)]
    assert planned_data(xcoder_compose([*base, "rl.data.system_prompt=null"]).rl)[0] == [str(data)]
    assert xcoder_compose(["experiment=paper_qwen25_7b_rl"]).rl.data.system_prompt is None


def test_hf_server_left_padding_gives_each_prompt_its_own_answer(tiny_model):
    """Prompts of different lengths share one left-padded batch: greedy tokens and log-probs must be
    the ones each prompt gets alone (positions follow the attention mask, not the padded column)."""
    import asyncio

    from xcoder.rl.verl_cpu.hf_rollout import HFRolloutServer

    server = HFRolloutServer({"prompt_length": 64, "response_length": 8, "seed": 0},
                             {"local_path": str(tiny_model)}, replica_rank=0)
    greedy = {"temperature": 0, "top_p": 1.0, "top_k": -1, "logprobs": True}
    long, short = list(range(5, 30)), list(range(40, 48))

    async def together():
        return await asyncio.gather(server.generate(long, dict(greedy), "a"), server.generate(short, dict(greedy), "b"))

    batched = asyncio.run(together())
    alone = [asyncio.run(server.generate(p, dict(greedy), "x")) for p in (long, short)]
    for got, want in zip(batched, alone):
        assert got.token_ids == want.token_ids
        assert got.log_probs == pytest.approx(want.log_probs, abs=1e-4)


def test_hf_server_logprobs_are_of_the_sampling_distribution(tiny_model):
    """verl compares the rollout's log-probs with the actor's recomputation (logits / temperature;
    vLLM is asked for `processed_logprobs`): the hf server must return the tempered ones, not raw."""
    import asyncio

    import torch

    from xcoder.rl.verl_cpu.hf_rollout import HFRolloutServer

    server = HFRolloutServer({"prompt_length": 16, "response_length": 6, "seed": 0},
                             {"local_path": str(tiny_model)}, replica_rank=0)
    prompt, temperature = [5, 6, 7, 8], 0.5
    params = {"temperature": temperature, "top_p": 1.0, "top_k": -1, "logprobs": True}
    out = asyncio.run(server.generate(prompt, params, "t"))
    ids = torch.tensor([prompt + out.token_ids])
    with torch.no_grad():
        logits = server.model(input_ids=ids).logits[0, len(prompt) - 1:-1] / temperature
    want = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(out.token_ids).unsqueeze(-1)).squeeze(-1)
    assert out.log_probs == pytest.approx(want.tolist(), abs=1e-4)


def test_cpu_profile_sizes_ray_for_two_ranks_and_stock_verl_accepts_it():
    """`rl.cpu=true rl.gpus_per_node=2`: 2 FSDP ranks on 2 logical Ray GPUs, a CPU bundle more per rank;
    verl's own validator checks the batch sizes divide by the world size."""
    from verl.trainer.main_ppo import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    _, two, _ = _plan(["experiment=demo", "rl.cpu=true", "rl.gpus_per_node=2"])
    assert "trainer.n_gpus_per_node=2" in two and "+ray_kwargs.ray_init.num_gpus=2" in two
    assert "ray_kwargs.ray_init.num_cpus=11" in two and "actor_rollout_ref.rollout.name=hf" in two
    _, one, _ = _plan(["experiment=demo"])
    assert "ray_kwargs.ray_init.num_cpus=8" in one
    composed = _verl_config(two)
    assert composed.trainer.n_gpus_per_node == 2
    validate_config(composed, use_reference_policy=need_reference_policy(composed), use_critic=need_critic(composed))
