"""`xcoder sft --dry-run` prints the paper's `swift sft` command; flags are real ms-swift 4.6.0
arguments; the launch environment follows the cluster config and refuses inconsistent setups."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from xcoder.config import REPO_ROOT, compose
from xcoder.registry import stage_cli
from xcoder.sft.command import LaunchError, build_command, check_global_batch
from xcoder.swift_args import format_value, swift_flags

main = stage_cli("sft")

# The paper recipe, value for value [paper-recipe §8, upstream train_sft.sh].
PAPER = {
    "tuner_type": "full", "torch_dtype": "bfloat16", "learning_rate": 5e-5, "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.03, "weight_decay": 0.1, "max_grad_norm": 1.0, "num_train_epochs": 8, "max_length": 32768,
    "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2, "deepspeed": "zero3_offload",
    "attn_impl": "flash_attn", "gradient_checkpointing": "true", "save_steps": 400, "save_total_limit": 40,
    "save_only_model": "true", "logging_steps": 20, "lazy_tokenize": "true", "packing": "false",
}


def dry_run(capsys, *overrides: str) -> tuple[dict[str, str], list[str], list[str]]:
    """Run `xcoder sft ... --dry-run`; return (env prefix, swift argv, comment lines)."""
    assert main([*overrides, "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    tokens = shlex.split(lines[-1])
    env = {}
    while "=" in tokens[0] and not tokens[0].startswith("-"):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    return env, tokens, comments


def flags(argv: list[str]) -> dict[str, str]:
    assert argv[0].endswith("swift") and argv[1] == "sft"
    out, i = {}, 2
    while i < len(argv):
        assert argv[i].startswith("--"), argv[i]
        out[argv[i][2:]] = argv[i + 1]
        i += 2
    return out


def test_paper_qwen25_dry_run_prints_the_paper_values(capsys):
    env, argv, comments = dry_run(capsys, "experiment=paper_qwen25_7b_sft")
    got = flags(argv)
    assert got["model"] == "Qwen/Qwen2.5-Coder-7B-Instruct"
    for key, value in PAPER.items():
        if isinstance(value, float):
            assert float(got[key]) == value, key
        else:
            assert got[key] == str(value), key
    assert got["dataset"].endswith("paper_qwen25_7b_sft/sft/data/train.jsonl")
    assert got["output_dir"].endswith("paper_qwen25_7b_sft/sft/checkpoints")
    for absent in ("template", "system", "model_type", "check_model", "max_steps"):  # ms-swift defaults, as upstream
        assert absent not in got
    assert env == {}  # cluster=local without GPUs: one process, no torchrun
    assert any("final checkpoint -> outputs/paper_qwen25_7b_sft/sft/final" in c for c in comments)


def test_paper_on_slurm_is_64_gpus_and_global_batch_128(capsys, caplog):
    env, argv, comments = dry_run(capsys, "experiment=paper_qwen25_7b_sft", "cluster=slurm")
    assert env["NPROC_PER_NODE"] == "8" and env["NNODES"] == "8"
    assert env["NODE_RANK"] == "$NODE_RANK" and env["MASTER_ADDR"] == "$MASTER_ADDR"  # set per node by the launcher
    assert any("world size: 64" in c for c in comments)
    assert not [r for r in caplog.records if "global batch" in r.getMessage()]
    cfg = compose(["experiment=paper_qwen25_7b_sft", "cluster=slurm"])
    assert check_global_batch(cfg, 64) is None
    assert "= 16" in check_global_batch(cfg, 8)


def test_paper_qwen3_uses_qwen3_base_and_the_same_recipe(capsys):
    _, argv, _ = dry_run(capsys, "experiment=paper_qwen3_8b_sft")
    got = flags(argv)
    assert got["model"] == "Qwen/Qwen3-8B-Base"
    assert float(got["learning_rate"]) == 5e-5 and got["num_train_epochs"] == "8"


@pytest.fixture(scope="module")
def swift_parser():
    from swift.arguments import SftArguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    with _patch_get_type_hints():
        return HfArgumentParser([SftArguments])


@pytest.mark.parametrize("experiment", ["paper_qwen25_7b_sft", "paper_qwen3_8b_sft", "demo"])
def test_every_flag_is_an_ms_swift_sft_argument(capsys, swift_parser, experiment):
    """Parse our argv with ms-swift's own SftArguments parser: an unknown or renamed option ends up
    in `remaining`, a bad value (e.g. torch_dtype bf16) raises."""
    _, argv, _ = dry_run(capsys, f"experiment={experiment}", "sft.resume=never")
    ns, remaining = swift_parser.parse_known_args(argv[2:])
    assert remaining == []
    if experiment != "demo":
        assert ns.learning_rate == 5e-5 and ns.deepspeed == "zero3_offload" and ns.lazy_tokenize is True
        assert ns.packing is False and ns.gradient_checkpointing is True and ns.save_only_model is True
        import swift

        assert (Path(swift.__file__).parent / "config" / f"{ns.deepspeed}.json").is_file()


def test_the_swift_argument_check_catches_renamed_options(swift_parser):
    _, remaining = swift_parser.parse_known_args(["--train_type", "full"])  # swift 3.x name
    assert remaining == ["--train_type", "full"]


def test_switches_are_documented_swift_arguments(swift_parser):
    with pytest.raises(LaunchError, match="packing=true needs sft.swift.lazy_tokenize=false"):
        build_command(compose(["sft.swift.packing=true"]), model="m", dataset="d", environ={})
    cfg = compose(["sft.swift.packing=true", "sft.swift.lazy_tokenize=false", "sft.swift.padding_free=true",
                   "sft.swift.use_liger_kernel=true",
                   "sft.swift.sequence_parallel_size=4"])
    argv = swift_flags(cfg.sft.swift)
    ns, remaining = swift_parser.parse_known_args(argv)
    assert remaining == [] and ns.packing and ns.padding_free and ns.use_liger_kernel and ns.sequence_parallel_size == 4
    cfg = compose(["cluster=slurm", "sft.expect_global_batch_size=128", "sft.swift.sequence_parallel_size=4"])
    assert "sp 4" in check_global_batch(cfg, 64)  # sequence parallelism shrinks the data-parallel batch


def test_format_value():
    assert format_value(True) == ["true"] and format_value(5e-5) == ["5e-05"] and format_value(1.0) == ["1.0"]
    assert format_value(["a", 2]) == ["a", "2"] and format_value(32768) == ["32768"]


def test_environment_must_agree_with_the_cluster_config():
    cfg = compose(["cluster=slurm"])
    with pytest.raises(LaunchError, match="NNODES=2 in the environment but cluster.nnodes gives 8"):
        build_command(cfg, model="m", dataset="d", environ={"NNODES": "2", "NODE_RANK": "0", "MASTER_ADDR": "h"})
    with pytest.raises(LaunchError, match="needs NODE_RANK"):
        build_command(cfg, model="m", dataset="d", environ={"MASTER_ADDR": "h"})
    cmd = build_command(cfg, model="m", dataset="d",
                        environ={"NODE_RANK": "3", "MASTER_ADDR": "node0", "MASTER_PORT": "1234", "NNODES": "8"})
    assert cmd.env == {"NPROC_PER_NODE": "8", "NNODES": "8", "NODE_RANK": "3", "MASTER_ADDR": "node0",
                       "MASTER_PORT": "1234"}
    assert cmd.world_size == 64
    with pytest.raises(LaunchError, match="needs GPUs"):
        build_command(compose(["cluster.nnodes=2"]), model="m", dataset="d", environ={})


def test_resume_adds_resume_only_model_when_only_weights_were_saved():
    cfg = compose([])
    argv = build_command(cfg, model="m", dataset="d", environ={}, resume_from="ck/checkpoint-400").argv
    assert argv[-4:] == ["--resume_from_checkpoint", "ck/checkpoint-400", "--resume_only_model", "true"]


def test_real_run_refuses_a_global_batch_other_than_the_papers(tmp_path, caplog):
    rc = main(["experiment=paper_qwen25_7b_sft", f"run.output_dir={tmp_path}"])
    assert rc == 2
    assert "sft.expect_global_batch_size=128" in caplog.text
    assert not (tmp_path / "sft" / "data").exists()  # refused before touching data


def test_unknown_model_source_is_an_error(tmp_path, caplog):
    assert main([f"run.output_dir={tmp_path}", "sft.model_source=s3", "--dry-run"]) == 2
    assert "sft.model_source must be one of" in caplog.text


def _script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE")}
    env.update(extra)
    return env


def test_train_sft_sh_multinode_from_torchrun_env():
    script = REPO_ROOT / "sft-recipe" / "train_sft.sh"
    env = _script_env(NNODES="2", NODE_RANK="1", MASTER_ADDR="10.0.0.1", MASTER_PORT="29600", NPROC_PER_NODE="8")
    out = subprocess.run(["bash", str(script), "experiment=paper_qwen25_7b_sft", "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("NPROC_PER_NODE=8 NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29600 ")
    assert "global batch 1 x 2 x 16 processes = 32" in out.stderr  # warned, not silently accepted


def test_slurm_sbatch_sets_torchrun_env_per_node(tmp_path):
    """Run the sbatch script with stub `scontrol`/`srun` (node 5 of 8) and check what reaches swift."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\nprintf 'gpu-node-01\\ngpu-node-02\\n'\n")
    (bin_dir / "srun").write_text('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = _script_env(PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_NODELIST="gpu-node-[01-08]",
                      SLURM_NNODES="8", SLURM_NODEID="5", SLURM_GPUS_ON_NODE="8", XCODER_ROOT=str(REPO_ROOT))
    out = subprocess.run(["bash", str(REPO_ROOT / "sft-recipe" / "slurm_sft.sbatch"),
                          "experiment=paper_qwen25_7b_sft", "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("NPROC_PER_NODE=8 NNODES=8 NODE_RANK=5 MASTER_ADDR=gpu-node-01 MASTER_PORT=29500 ")
    assert "global batch" not in out.stderr  # 1 x 2 x 64 = 128, the paper's


def test_global_batch_and_cpu_ranks_need_use_cpu():
    """Without `use_cpu`, transformers does not treat a CPU torchrun group as distributed: every
    rank would train its own copy. The stage refuses that before launching."""
    from xcoder.sft.command import check_cpu_ranks, global_batch_size

    cfg = compose(["experiment=demo"])
    assert global_batch_size(cfg, 2) == 1 * 2 * 2
    check_cpu_ranks(cfg, 2, cuda=False)  # demo sets use_cpu + gloo
    paper = compose(["experiment=paper_qwen25_7b_sft"])
    check_cpu_ranks(paper, 64, cuda=True)
    with pytest.raises(LaunchError, match="use_cpu=true"):
        check_cpu_ranks(paper, 2, cuda=False)
