"""The SFT stage: resolve the model, convert the data, launch `swift sft`, publish the checkpoint.

Resumable: converted data is reused when its inputs are unchanged (keyed by content hash), an
unfinished run of the SAME key (command + data) continues from its last `checkpoint-N`
(`sft.resume=auto`), and a finished run is not repeated. A changed key never resumes or extends an
old run: the old checkpoints are moved aside and training starts fresh (see xcoder.runs.claim_run).
On multi-node jobs every node runs this; NODE_RANK 0 converts the data and publishes the checkpoint,
the others wait for the data and only train.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from xcoder import runs
from xcoder.redaction import mask_config
from xcoder.sft import data as sft_data
from xcoder.sft.command import LaunchError, SwiftCommand, build_command, check_cpu_ranks, check_global_batch

log = logging.getLogger(__name__)

MODEL_SOURCES = ("path", "tiny")


def resolve_model(cfg: DictConfig, *, build: bool) -> str:
    """The model path/hub id to train; for `model_source: tiny`, build the tiny model on demand."""
    source = str(cfg.sft.model_source)
    if source not in MODEL_SOURCES:
        raise LaunchError(f"sft.model_source must be one of {MODEL_SOURCES}, got {source!r}")
    if source == "path":
        return str(cfg.sft.model)
    out = Path(str(cfg.sft.tiny_model_dir))
    if build:
        from xcoder.tiny_model import build_tiny_model

        build_tiny_model(out)
    return str(out)


def run_key(command: SwiftCommand, data_key: str) -> str:
    """Identity of a training run: the command without resume flags, plus the data conversion key."""
    argv = list(command.argv)
    for flag in ("--resume_from_checkpoint", "--resume_only_model"):
        if flag in argv:
            i = argv.index(flag)
            del argv[i:i + 2]
    return runs.short_hash({"argv": argv[1:], "data": data_key})


def run_swift(command: SwiftCommand, log_path: Path, environ: Mapping[str, str]) -> int:
    """Run swift, streaming its output to the console and appending it to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**environ, **command.env}
    log.info("launching: %s", command.shell())
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(f"$ {command.shell()}\n")
        proc = subprocess.Popen(command.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace")
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                fh.write(line)
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        return proc.wait()


def dry_run_report(cfg: DictConfig, model: str) -> int:
    dataset, _ = sft_data.output_paths(cfg.sft.data)
    command = build_command(cfg, model=model, dataset=str(dataset), dry_run=True)
    problem = check_global_batch(cfg, command.world_size)
    if problem:
        log.warning("%s", problem)
    d = cfg.sft.data
    source = d.train_parquet if d.source == "synth" else f"{d.released.path} [{d.released.data_files}]"
    print(f"# data: {d.source} {source} -> {dataset} (max_tokens={d.max_tokens}, written on a real run)")
    if cfg.sft.model_source == "tiny":
        print(f"# model: tiny random Qwen2 built at {model}")
    print(f"# world size: {command.world_size} process(es); final checkpoint -> {cfg.sft.final_checkpoint}")
    print(command.shell())
    return 0


def run(cfg: DictConfig, dry_run: bool) -> int:
    """Stage runner (see module docstring). Returns a process exit code."""
    if cfg.sft.backend != "swift":
        log.error("sft.backend=%s is not supported (only 'swift')", cfg.sft.backend)
        return 2
    try:
        model = resolve_model(cfg, build=not dry_run)
        if dry_run:
            return dry_run_report(cfg, model)
        return _train(cfg, model)
    except (LaunchError, sft_data.SFTDataError, runs.CheckpointError, FileNotFoundError, ValueError) as exc:
        log.error("sft: %s", exc)
        return 2


def _train(cfg: DictConfig, model: str) -> int:
    environ = dict(os.environ)
    rank = int(environ.get("NODE_RANK", "0") or 0)
    out = Path(str(cfg.sft.output_dir))
    probe = build_command(cfg, model=model, dataset="-", environ=environ)
    problem = check_global_batch(cfg, probe.world_size)
    if problem:
        raise LaunchError(problem)
    if probe.world_size > 1:
        import torch

        check_cpu_ranks(cfg, probe.world_size, cuda=torch.cuda.is_available())
    if rank == 0:
        dataset, stats = sft_data.prepare(cfg.sft.data, tokenizer_path=model)
    else:
        dataset, stats = sft_data.wait_for(cfg.sft.data, model, timeout_s=float(cfg.sft.data.wait_timeout_s))
    print(stats.summary())

    base = build_command(cfg, model=model, dataset=str(dataset), environ=environ)
    if cfg.sft.resume not in ("auto", "never"):
        raise LaunchError(f"sft.resume must be 'auto' or 'never', got {cfg.sft.resume!r}")
    ckpt_dir = Path(str(cfg.sft.checkpoints_dir))
    final = Path(str(cfg.sft.final_checkpoint))
    training = runs.TrainRun("SFT", run_key(base, stats.key), ckpt_dir, out / "manifest.json", final,
                        resumable=cfg.sft.resume == "auto", primary=rank == 0)
    command = base

    def launch(state: str, _moved: Path | None) -> int:
        nonlocal command
        resume = runs.last_checkpoint(ckpt_dir) if state == "running" and training.resumable else None
        if resume is not None:
            log.info("resuming the unfinished run %s from %s", training.key, resume)
        command = build_command(cfg, model=model, dataset=str(dataset), environ=environ,
                                resume_from=str(resume) if resume else None)
        rc = run_swift(command, out / "swift.log", environ)
        if rc != 0:
            log.error("swift sft exited with code %d (log: %s)", rc, out / "swift.log")
        return rc

    def publish() -> runs.Manifest:
        last = runs.publish_final(ckpt_dir, final)
        print(f"final checkpoint: {final} -> {last}")
        return runs.Manifest(
            key=training.key, command=command.shell(), checkpoint=str(last), final_checkpoint=str(final),
            data=json.loads(stats.to_json()),
            config=mask_config(OmegaConf.to_container(cfg.sft, resolve=True)))  # sft.env secrets as ***

    return runs.train_once(training, launch, publish)
