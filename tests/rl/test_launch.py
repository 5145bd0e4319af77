"""Launch scripts: the recipe wrapper renders the same command as `xcoder rl`; bad usage is loud."""

import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_train_rl_sh_dry_run_prints_verl_and_merger_commands():
    proc = subprocess.run(["bash", str(ROOT / "rl-recipe/train_rl.sh"), "experiment=paper_qwen3_8b_rl", "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "-m verl.trainer.main_ppo" in proc.stdout and "trainer.nnodes=2" in proc.stdout
    assert "+actor_rollout_ref.rollout.repetition_penalty=1.15" in proc.stdout
    assert "-m verl.model_merger merge --backend fsdp" in proc.stdout


def test_judge_server_mode_switch_reaches_the_reward():
    proc = subprocess.run(["bash", str(ROOT / "rl-recipe/train_rl.sh"), "experiment=paper_qwen25_7b_rl",
                           "rl.reward.judge.mode=server", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    args = shlex.split(next(line for line in proc.stdout.splitlines() if "main_ppo" in line))
    assert "+reward.custom_reward_function.reward_kwargs.judge_mode=server" in args
    assert "+reward.custom_reward_function.reward_kwargs.judge_url='http://127.0.0.1:8080'" in args


def test_ray_start_rejects_bad_usage_without_starting_anything():
    for args in ([], ["worker"], ["head", "--bogus"]):
        proc = subprocess.run(["bash", str(ROOT / "scripts/ray_start.sh"), *args], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 2, (args, proc.stderr)
