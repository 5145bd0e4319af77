"""Two-rank SFT on CPU through the real launch path: `sft-recipe/train_sft.sh` -> `xcoder sft` ->
`swift sft` -> torchrun -> one gloo process group.

- one "node", `NPROC_PER_NODE=2`: ms-swift starts torchrun with 2 local ranks;
- two "nodes" on this machine, `NNODES=2 NODE_RANK=0|1 MASTER_ADDR=127.0.0.1 MASTER_PORT=<free>`,
  one rank each, launched as two independent commands (as `slurm_sft.sbatch` does per node): node 0
  converts the data and publishes the checkpoint, node 1 waits for the data and only trains.
- `sft-recipe/slurm_sft.sbatch` itself on a 2-"node" allocation of this machine: stand-in `scontrol`
  (node list) and `srun` (runs the task once per node with its SLURM_NODEID, as Slurm would) on PATH;
  the script derives NNODES, MASTER_ADDR and NODE_RANK from SLURM_* as on a cluster.
Both must form one group of world size 2 (ms-swift logs it), train the same steps with the global
batch the recipe computes (`global_batch_size`, also what transformers logs), reach the same losses
(same data, seed and world size), and leave a checkpoint the eval stage loads and generates with.
Each launch runs under a hard subprocess timeout. DeepSpeed is not used here (see test_deepspeed.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from xcoder.config import REPO_ROOT, compose
from xcoder.sft.command import global_batch_size

from .samples import write_sft_parquet

pytestmark = pytest.mark.slow

LAUNCH_TIMEOUT_S = 900
ROWS = 16
LAUNCH_VARS = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE", "WORLD_SIZE", "RANK",
               "LOCAL_RANK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overrides(out: Path, tiny_model: Path, parquet: Path) -> list[str]:
    return ["experiment=demo", f"run.output_dir={out}", f"sft.tiny_model_dir={tiny_model}",
            f"sft.data.train_parquet={parquet}", "sft.swift.max_steps=4", "sft.swift.save_steps=4",
            "sft.swift.logging_steps=1", "sft.swift.log_level=info", "sft.expect_global_batch_size=4"]


def _launch(overrides: list[str], env_vars: dict[str, str], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS} | env_vars
    with log.open("w") as fh:
        return subprocess.Popen(["bash", str(REPO_ROOT / "sft-recipe" / "train_sft.sh"), *overrides], env=env,
                                stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), start_new_session=True)


def _wait(procs: list[subprocess.Popen], logs: list[Path]) -> None:
    try:
        for proc in procs:
            proc.wait(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
        pytest.fail(f"SFT launch still running after {LAUNCH_TIMEOUT_S} s; logs: {logs}")
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, f"{log}:\n{log.read_text()[-4000:]}"


def _result(out: Path, overrides: list[str], logs: list[Path]) -> dict:
    cfg = compose(overrides)
    final = Path(cfg.sft.final_checkpoint)
    text = "".join(log.read_text() for log in logs)
    # ms-swift logs this on each node's local rank 0: (rank, world size, ranks on this node)
    world = sorted(set(re.findall(r"rank: (\d), local_rank: 0, world_size: (\d), local_world_size: (\d)", text)))
    batch = sorted(set(int(x) for x in re.findall(r"Total train batch size \(w\. parallel, distributed & "
                                                  r"accumulation\) = (\d+)", text)))
    losses = [r["loss"] for r in map(json.loads, (Path(cfg.sft.checkpoints_dir) / "logging.jsonl").read_text()
                                     .splitlines()) if "loss" in r]
    return {"cfg": cfg, "final": final, "world": world, "batch": batch, "losses": losses}


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    return write_sft_parquet(tmp_path_factory.mktemp("sftdata") / "sft.parquet", n=ROWS)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, tiny_model, parquet) -> dict:
    out = tmp_path_factory.mktemp("nproc2")
    overrides = _overrides(out, tiny_model, parquet)
    log = out / "launch.log"
    _wait([_launch(overrides, {"NPROC_PER_NODE": "2"}, log)], [log])
    return _result(out, overrides, [log])


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory, tiny_model, parquet) -> dict:
    out = tmp_path_factory.mktemp("nnodes2")
    overrides = _overrides(out, tiny_model, parquet)
    port = str(_free_port())
    logs = [out / f"node{rank}.log" for rank in (0, 1)]
    procs = [_launch(overrides, {"NNODES": "2", "NODE_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                                 "MASTER_PORT": port, "NPROC_PER_NODE": "1"}, log)
             for rank, log in zip((0, 1), logs)]
    _wait(procs, logs)
    res = _result(out, overrides, logs)
    res["node_logs"] = [log.read_text() for log in logs]
    return res


FAKE_SCONTROL = """#!/usr/bin/env bash
# stand-in: `scontrol show hostnames LIST` -> one line per node of the allocation
[ "$1 $2" = "show hostnames" ] && for _ in $(seq "$SLURM_NNODES"); do echo 127.0.0.1; done
"""
FAKE_SRUN = """#!/usr/bin/env bash
# stand-in: run the task once per node (SLURM_NODEID=0..N-1) in parallel; fail if any task fails
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do SLURM_NODEID=$i "$@" & pids+=($!); done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
"""


@pytest.fixture(scope="module")
def slurm_job(tmp_path_factory, tiny_model, parquet) -> dict:
    out = tmp_path_factory.mktemp("slurm2")
    fake_bin = out / "fakebin"
    fake_bin.mkdir()
    for name, text in (("scontrol", FAKE_SCONTROL), ("srun", FAKE_SRUN)):
        (fake_bin / name).write_text(text)
        (fake_bin / name).chmod(0o755)
    overrides = _overrides(out, tiny_model, parquet)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS} | {
        "PATH": f"{fake_bin}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node[0-1]", "SLURM_NNODES": "2",
        "SLURM_SUBMIT_DIR": str(REPO_ROOT), "NPROC_PER_NODE": "1", "MASTER_PORT": str(_free_port())}
    log = out / "sbatch.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(["bash", str(REPO_ROOT / "sft-recipe" / "slurm_sft.sbatch"), *overrides], env=env,
                                stdout=fh, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), start_new_session=True)
    _wait([proc], [log])
    # the sbatch adds cluster=slurm; NNODES / NPROC_PER_NODE from the allocation override its 8 x 8
    return _result(out, [*overrides, "cluster=slurm", "cluster.nnodes=2", "cluster.gpus_per_node=1"], [log])


def test_two_processes_on_one_node_form_one_group(two_processes):
    r = two_processes
    assert r["world"] == [("0", "2", "2")]
    assert r["batch"] == [global_batch_size(r["cfg"], 2)] == [4]  # 1 per device x 2 accumulation x 2 ranks
    assert len(r["losses"]) == 4  # rank 0 alone logs: one line per step
    assert r["final"].is_symlink() and (r["final"] / "model.safetensors").exists()


def test_two_nodes_one_rank_each_match_the_single_node_run(two_nodes, two_processes):
    r = two_nodes
    assert r["world"] == [("0", "2", "1"), ("1", "2", "1")]
    assert r["batch"] == [global_batch_size(r["cfg"], 2)]
    assert "final checkpoint:" in r["node_logs"][0] and "final checkpoint:" not in r["node_logs"][1]
    assert r["losses"] == pytest.approx(two_processes["losses"], rel=1e-4)  # same group, data, seed


def test_both_checkpoints_load_in_eval(two_processes, two_nodes, tmp_path):
    from xcoder.eval.run import run_eval
    from xcoder.judge import Judge

    with Judge(workers=2) as judge:
        for name, r in (("nproc2", two_processes), ("nnodes2", two_nodes)):
            cfg = compose(["experiment=demo", f"run.output_dir={tmp_path}/{name}", f"eval.model_path={r['final']}",
                           "eval.sampling.n=1", "eval.sampling.max_tokens=16"])
            res = run_eval(cfg, judge=judge)
            assert res["model_path"] == str(r["final"]) and res["windows"]["v5"]["score"]["problems"] == 3


def test_slurm_sbatch_on_two_nodes_matches_the_single_node_run(slurm_job, two_processes):
    r = slurm_job
    assert r["world"] == [("0", "2", "1"), ("1", "2", "1")]
    assert r["batch"] == [global_batch_size(r["cfg"], 2)]
    assert r["losses"] == pytest.approx(two_processes["losses"], rel=1e-4)
    assert r["final"].is_symlink()
