"""Shared builders for the RL tests: RL rows, responses of each verdict, a code-writing tiny policy."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from xcoder.records import RLRow, write_records

SUM_CODE = "n = int(input())\nprint(sum(map(int, input().split())))"
SUM_ANSWER = f"```python\n{SUM_CODE}\n```"
PROMPT = "Read n, then n integers; print their sum."


def sum_tests(n: int = 12) -> list[dict]:
    tests = []
    for i in range(n):
        nums = list(range(i, i + 3))
        tests.append({"input": f"3\n{' '.join(map(str, nums))}\n", "output": str(sum(nums)), "weight": 1.0})
    return tests


def stdio_truth(tests: list[dict]) -> str:
    return json.dumps({"kind": "stdio", "fn_name": None, "tests": tests})


def rl_row(task_id: str, index: int, truth: str, prompt: str = PROMPT) -> RLRow:
    return RLRow(
        data_source="xcoder_synth", prompt=[{"role": "user", "content": prompt}], ability="code",
        reward_model={"style": "rule", "ground_truth": truth},
        extra_info={"task_id": task_id, "index": index, "style": "codeforces", "kind": "stdio", "fn_name": None,
                    "pass_rate": 0.5, "difficulty": "medium"},
    )


def write_sum_parquet(path: Path, copies: int = 4) -> Path:
    rows = [rl_row(f"sum-{i}", i, stdio_truth(sum_tests())) for i in range(copies)]
    return write_records(path, rows, RLRow)


def code_policy(tiny_model: Path, out: Path, steps: int = 150) -> Path:
    """The tiny random model taught (in-process, a second of CPU) to answer the prompt with
    SUM_ANSWER: a stand-in for an SFT checkpoint, so GRPO rollouts contain gradable code."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out / "config.json").exists():
        return out
    shutil.copytree(tiny_model, out)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    a_ids = tok(SUM_ANSWER + "<|im_end|>")["input_ids"]
    batch = []
    # with and without the default system prompt ms-swift's `qwen` template injects
    for system in ([], [{"role": "system", "content": "You are a helpful assistant."}]):
        prompt = tok.apply_chat_template([*system, {"role": "user", "content": PROMPT}], tokenize=False,
                                         add_generation_prompt=True)
        p_ids = tok(prompt)["input_ids"]
        batch.append((p_ids + a_ids, [-100] * len(p_ids) + a_ids))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(steps):
        for ids, labels in batch:
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
            loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out)
    return out


WRONG_CODE = "n = int(input())\nprint(max(map(int, input().split())))"  # WA on every sum test
WRONG_ANSWER = f"```python\n{WRONG_CODE}\n```"


def mixed_policy(tiny_model: Path, out: Path, steps: int = 150, seed: int = 0) -> Path:
    """The learning-signal start point: the tiny model taught (in-process SFT warm-up) to answer the
    sum prompt with the right program (`sum`, reward 5) or a wrong one (`max`, WA: reward 0) about
    equally often; the two differ in one token, so GRPO with the judge's reward has one clear thing
    to learn and the reward can rise from ~2.5 towards 5 in a few CPU steps."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out / "config.json").exists():
        return out
    shutil.copytree(tiny_model, out)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    batch = []
    for system in ([], [{"role": "system", "content": "You are a helpful assistant."}]):
        prompt = tok.apply_chat_template([*system, {"role": "user", "content": PROMPT}], tokenize=False,
                                         add_generation_prompt=True)
        p_ids = tok(prompt)["input_ids"]
        for answer in (SUM_ANSWER, WRONG_ANSWER):
            a_ids = tok(answer + "<|im_end|>")["input_ids"]
            batch.append((p_ids + a_ids, [-100] * len(p_ids) + a_ids))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(seed)
    model.train()
    for _ in range(steps):
        for ids, labels in batch:
            model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out)
    return out


def kill_private_run(proc: subprocess.Popen, ray_dir: str) -> None:
    """SIGKILL a launched process group, then any process of OUR private Ray session (matched by its
    temp dir in the command line): a timed-out CPU verl run must not leave Ray daemons behind."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if ray_dir in cmd:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
