"""DeepSpeed on CPU: what runs and what cannot.

ZeRO-3 does not train on CPU with transformers 5.10.4 + accelerate 1.15.0 + DeepSpeed 0.18.9, for a
reason inside those libraries (sft-recipe/README.md, "DeepSpeed on CPU"): transformers counts one
process unless `use_cpu` is set, and with `use_cpu` it never hands the group to DeepSpeed, so
DeepSpeed's own batch check fails either way. `test_zero3_cannot_train_on_cpu_for_the_documented_reason`
keeps that statement honest (it fails, and says so, the day the libraries change). What a GPU
cluster would first meet instead, the config we emit, is checked by DeepSpeed's own parser:
`xcoder.sft.deepspeed_check` resolves `--deepspeed zero3_offload` as ms-swift does, fills the
"auto" values as transformers does, and parses it for the launch's world size.
Every run is a subprocess under a hard timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xcoder.config import REPO_ROOT

from .samples import write_sft_parquet

pytestmark = pytest.mark.slow

QWEN25_7B_HIDDEN = 3584  # config.json hidden_size of Qwen2.5-Coder-7B-Instruct (fills bucket sizes)
HIDDEN = {"paper_qwen25_7b_sft": QWEN25_7B_HIDDEN, "paper_qwen3_8b_sft": 4096}  # Qwen3-8B-Base: 4096


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xcoder.sft.deepspeed_check", *args], capture_output=True,
                          text=True, timeout=300, cwd=str(REPO_ROOT))


def _json(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{\n"):])


@pytest.mark.parametrize("experiment", ["paper_qwen25_7b_sft", "paper_qwen3_8b_sft"])
def test_paper_deepspeed_config_passes_deepspeeds_own_parser(experiment):
    res = _check("--hidden-size", str(HIDDEN[experiment]), f"experiment={experiment}", "cluster=slurm")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _json(res.stdout) == {"world_size": 64, "train_batch_size": 128, "micro_batch_per_gpu": 1,
                                 "gradient_accumulation_steps": 2, "zero_stage": 3, "offload_optimizer": "cpu",
                                 "offload_param": "cpu", "bf16": True, "gradient_clipping": 1.0}


def test_deepspeeds_parser_rejects_a_batch_filled_for_another_world_size():
    """The parser is not a rubber stamp: the 128-row batch on 32 ranks breaks its invariant."""
    res = _check("--hidden-size", str(QWEN25_7B_HIDDEN), "--data-parallel-size", "32",
                 "experiment=paper_qwen25_7b_sft", "cluster=slurm")
    assert res.returncode == 1
    assert "train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size" in res.stderr


def test_zero3_cannot_train_on_cpu_for_the_documented_reason(tmp_path, tiny_model):
    parquet = write_sft_parquet(tmp_path / "sft.parquet", n=8)
    env = {k: v for k, v in os.environ.items() if k not in ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")}
    res = subprocess.run(
        ["bash", str(REPO_ROOT / "sft-recipe" / "train_sft.sh"), "experiment=demo", f"run.output_dir={tmp_path}/run",
         f"sft.tiny_model_dir={tiny_model}", f"sft.data.train_parquet={parquet}", "sft.swift.max_steps=2",
         "sft.swift.deepspeed=zero3"], env=env | {"NPROC_PER_NODE": "2"}, capture_output=True, text=True,
        timeout=600, cwd=str(REPO_ROOT))
    out = res.stdout + res.stderr
    assert res.returncode != 0, "ZeRO-3 trained on CPU: update sft-recipe/README.md and this test"
    # transformers (use_cpu) counts 2 ranks and fills train_batch_size 4; DeepSpeed's group was never
    # initialized, so its parser sees world size 1
    assert "world_size 4 != 1 * 2 * 1" in out, out[-3000:]
