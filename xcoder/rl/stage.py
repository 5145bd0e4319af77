"""`xcoder rl`: prepare data, launch GRPO (verl or ms-swift), publish an HF checkpoint for eval.

verl:  validate/convert data -> `python -m verl.trainer.main_ppo <overrides>` -> verl model merger
       (`python -m verl.model_merger merge --backend fsdp`) into `rl.final_checkpoint`.
swift: same data -> swift JSONL (prompt + ground_truth column) -> `swift rlhf --rlhf_type grpo` with
       our reward as external ORM plugin -> last `checkpoint-N` linked as `rl.final_checkpoint`.
`--dry-run` prints every command without touching files.
swift runs are keyed (command + reward settings + data content + start model identity): a rerun with
the same key is skipped (`rl/manifest.json`), a new key trains fresh with a fresh `rewards.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xcoder import runs
from xcoder.records import SchemaError
from xcoder.rl import data as rldata
from xcoder.rl.curve import verl_metrics_path
from xcoder.rl.verl_cmd import (
    abs_path,
    latest_actor_dir,
    merge_command,
    reward_settings,
    shell_join,
    verl_command,
    verl_env,
)
from xcoder.rl.verl_cpu.profile import cpu_enabled, ray_temp_dir
from xcoder.swift_args import swift_flags

log = logging.getLogger(__name__)
PLUGIN_FILE = Path(__file__).resolve().with_name("swift_plugin.py")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


# ---- data -----------------------------------------------------------------------------------
def _stamp_ok(out: Path, key: str) -> bool:
    stamp = out.with_suffix(".json")
    return out.exists() and stamp.exists() and json.loads(stamp.read_text()).get("key") == key


def _write_stamp(out: Path, key: str, info: dict[str, Any]) -> None:
    runs.write_json_atomic(out.with_suffix(".json"), {"key": key, **info})


def planned_data(rl: DictConfig) -> tuple[list[str], list[str]]:
    """Train / val parquet paths the trainer will read (no I/O)."""
    out = Path(str(rl.data.output_dir))
    sf = str(rl.reward.backend) == "sandbox_fusion"
    if str(rl.data.source) == "released":
        val = [str(out / "val.parquet")] if _as_list(rl.data.released.val_files) else []
        return [str(out / "train.parquet")], val
    if str(rl.data.source) != "synth":
        raise ValueError(f"rl.data.source must be 'synth' or 'released', got {rl.data.source!r}")
    train = _as_list(rl.data.train_files)
    val = _as_list(rl.data.val_files)
    if sf or _system_prompt(rl):
        return [str(out / "train.parquet")], ([str(out / "val.parquet")] if val else [])
    return train, val


def _system_prompt(rl: DictConfig) -> str | None:
    """`rl.data.system_prompt` for the verl backend (swift takes `rl.swift.system`)."""
    text = rl.data.get("system_prompt")
    return str(text) if text and str(rl.backend) == "verl" else None


def prepare_data(rl: DictConfig) -> tuple[list[str], list[str]]:
    """Validate (synth) or convert (released) the RL data; resumable by a key over the inputs."""
    out = Path(str(rl.data.output_dir))
    train, val = planned_data(rl)
    sf_source = str(rl.data.sandbox_fusion_data_source) if str(rl.reward.backend) == "sandbox_fusion" else None
    if str(rl.data.source) == "released":
        rel = rl.data.released
        for files, target in ((_as_list(rel.train_files), out / "train.parquet"),
                              (_as_list(rel.val_files), out / "val.parquet")):
            if not files:
                continue
            key = hashlib.sha256(json.dumps([str(rel.path), rel.revision, files, rel.limit,
                                             sf_source]).encode()).hexdigest()
            if _stamp_ok(target, key):
                log.info("reusing converted %s", target)
                continue
            local = [str(rldata.resolve_released_file(str(rel.path), f, rel.revision)) for f in files]
            counts = rldata.convert_released(local, target, limit=rel.limit)
            if sf_source:
                rldata.write_rl_view([target], target, [lambda t: rldata.sandbox_fusion_view(t, sf_source)])
            _write_stamp(target, key, {"counts": counts})
        return train, val
    sources = {"train": _as_list(rl.data.train_files), "val": _as_list(rl.data.val_files)}
    for name, files in sources.items():
        for f in files:
            n = rldata.validate_rl_file(f)
            log.info("validated %s: %d RL rows", f, n)
        system = _system_prompt(rl)
        if (sf_source or system) and files:
            views = ([lambda t: rldata.sandbox_fusion_view(t, sf_source)] if sf_source else []) + (
                [lambda t, system=system: rldata.system_prompt_view(t, system)] if system else [])
            rldata.write_rl_view(files, out / f"{name}.parquet", views)
    return train, val


def swift_jsonl(parquet_files: Sequence[str], out_path: Path) -> int:
    """RL rows -> swift GRPO rows: `messages` (the prompt), `ground_truth`, `task_id` columns."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for f in parquet_files:
            for row in (r for table in rldata.iter_rl_tables(f) for r in table.to_pylist()):
                fh.write(json.dumps({"messages": row["prompt"], "ground_truth": row["reward_model"]["ground_truth"],
                                     "task_id": str(row["extra_info"]["task_id"])}, ensure_ascii=False) + "\n")
                n += 1
    os.replace(tmp, out_path)
    return n


# ---- commands -------------------------------------------------------------------------------
def swift_command(cfg: DictConfig, dataset: str) -> list[str]:
    rl = cfg.rl
    exe = str(rl.swift_bin) if rl.swift_bin else _swift_exe()
    return [exe, "rlhf", *swift_flags(rl.swift), "--model", str(rl.model_path), "--external_plugins", str(PLUGIN_FILE),
            "--reward_funcs", "xcoder_code", "--dataset", dataset, "--output_dir", str(rl.checkpoints_dir),
            "--add_version", "false"]


def _swift_exe() -> str:
    beside = Path(sys.executable).parent / "swift"
    return str(beside) if beside.exists() else "swift"


def swift_env(cfg: DictConfig) -> dict[str, str]:
    settings = reward_settings(cfg.rl)
    env = {k: str(v) for k, v in OmegaConf.to_container(cfg.rl.env, resolve=True).items()}  # type: ignore[union-attr]
    env["XCODER_RL_REWARD_SETTINGS"] = json.dumps(settings.__dict__)
    env["XCODER_RL_REWARD_LOG"] = str(Path(str(cfg.rl.output_dir)) / "rewards.jsonl")
    return env


def _env_prefix(env: dict[str, str]) -> str:
    """`VAR=value ...` for printing/logging/manifests: secret-named values are shown as `***`."""
    from xcoder.redaction import mask_env

    return " ".join(f"{k}={shlex.quote(v)}" for k, v in mask_env(env).items())


# ---- runners --------------------------------------------------------------------------------
def run(cfg: DictConfig, dry_run: bool) -> int:
    backend = str(cfg.rl.backend)
    if backend not in ("verl", "swift"):
        log.error("rl.backend must be 'verl' or 'swift', got %r", backend)
        return 2
    try:
        return _run_verl(cfg, dry_run) if backend == "verl" else _run_swift(cfg, dry_run)
    except FileNotFoundError as exc:  # missing input data / model: one line naming the file, exit 2 like sft
        hint = (" (run `xcoder synth` first, or set rl.data.source=released)"
                if str(cfg.rl.data.source) == "synth" else "")
        log.error("rl: %s%s", exc, hint)
        return 2
    except (SchemaError, runs.CheckpointError) as exc:
        log.error("rl: %s", exc)
        return 2


def _run_verl(cfg: DictConfig, dry_run: bool) -> int:
    rl = cfg.rl
    env = verl_env(rl)
    if dry_run:
        train, val = planned_data(rl)
        print(f"# data ({rl.data.source}): validate/convert -> train {train} val {val or '(none: validation off)'}")
        print("# train (verl GRPO):")
        print((_env_prefix(env) + " " if env else "") + shell_join(verl_command(rl, train, val)))
        if rl.merge.enabled:
            print("# merge the last checkpoint to Hugging Face format for eval:")
            print(shell_join(merge_command(rl)))
        return 0
    train, val = prepare_data(rl)
    cmd = verl_command(rl, train, val)
    # verl's resume_mode=auto resumes the latest global_step in checkpoints_dir whatever produced it:
    # key the directory (command + data content + start model identity) so a changed model/data
    # moves the old run aside and trains fresh instead of silently continuing the old one
    key, identity = run_key(cmd, env, [*train, *val], str(rl.model_path))
    final = Path(str(rl.final_checkpoint))
    ckpt_dir = Path(abs_path(str(rl.checkpoints_dir)))
    training = runs.TrainRun("RL", key, ckpt_dir, Path(str(rl.output_dir)) / "manifest.json",
                             final if rl.merge.enabled else None, resumable=True,
                             done_because="command, data and model")

    def launch(_state: str, _moved: Path | None) -> int:
        log.info("launching: %s", shell_join(cmd))
        # per-step metrics of verl's `file` logger: one file per launch (verl truncates its file), kept
        # under checkpoints_dir so they move aside with a superseded run; not part of the run key
        metrics = verl_metrics_path(ckpt_dir, time.strftime("%Y%m%d-%H%M%S"))
        metrics.parent.mkdir(parents=True, exist_ok=True)
        rc = subprocess.call(cmd, env={**os.environ, **env, "VERL_FILE_LOGGER_PATH": str(metrics)})
        if rc != 0:
            log.error("verl exited with %d", rc)  # a CPU run's private Ray dir is kept: its logs
            return rc
        if cpu_enabled(rl) and not rl.get("cpu_ray_temp_dir"):  # the auto-named private Ray dir: logs of a clean run
            shutil.rmtree(ray_temp_dir(rl), ignore_errors=True)
        return 0

    def publish() -> runs.Manifest:
        marker = Path(str(rl.checkpoints_dir)) / "latest_checkpointed_iteration.txt"
        actor = latest_actor_dir(str(rl.checkpoints_dir)) if marker.exists() else None
        if rl.merge.enabled:
            merge = merge_command(rl, str(latest_actor_dir(str(rl.checkpoints_dir))))
            log.info("merging: %s", shell_join(merge))
            rc = subprocess.call(merge, env={**os.environ, **env})
            if rc != 0:
                raise runs.StepFailed(f"verl model merger exited with {rc}", rc)
            log.info("final RL checkpoint: %s", rl.final_checkpoint)
        return runs.Manifest(
            key=key, command=shell_join(cmd),
            data={"files": train, "sha256": identity["data_sha256"], "prompts": _parquet_rows(train)},
            model=identity["model"], final_checkpoint=str(final) if rl.merge.enabled else None,
            checkpoint=str(actor) if actor else None, steps=int(actor.parent.name.split("_")[-1]) if actor else None)

    return runs.train_once(training, launch, publish)


def _run_swift(cfg: DictConfig, dry_run: bool) -> int:
    rl = cfg.rl
    dataset = Path(str(rl.data.output_dir)) / "swift_train.jsonl"
    cmd = swift_command(cfg, str(dataset))
    env = swift_env(cfg)
    if dry_run:
        train, _ = planned_data(rl)
        print(f"# data ({rl.data.source}): {train} -> {dataset}")
        print("# train (ms-swift GRPO, reward = xcoder judge via external ORM plugin):")
        print(_env_prefix(env) + " " + shlex.join(cmd))
        print(f"# final checkpoint: last checkpoint-N under {rl.checkpoints_dir} linked as {rl.final_checkpoint}")
        return 0
    train, _ = prepare_data(rl)
    n = swift_jsonl(train, dataset)
    log.info("swift GRPO data: %d prompts -> %s", n, dataset)
    Path(str(rl.output_dir)).mkdir(parents=True, exist_ok=True)  # the reward log's directory
    key, identity = run_key(cmd, env, [dataset], str(rl.model_path))
    final = Path(str(rl.final_checkpoint))
    ckpt_dir = Path(str(rl.checkpoints_dir))
    rewards = Path(env["XCODER_RL_REWARD_LOG"])
    # no resume for swift GRPO: anything but this key's finished run is moved aside, training is fresh
    training = runs.TrainRun("RL", key, ckpt_dir, Path(str(rl.output_dir)) / "manifest.json", final,
                             resumable=False, done_because="command, data and model")

    def launch(_state: str, moved: Path | None) -> int:
        if rewards.exists():  # one rewards.jsonl per training run: the old run's goes with its checkpoints
            if moved is not None:
                os.replace(rewards, moved / rewards.name)
                log.info("previous run's %s moved to %s", rewards.name, moved)
            else:
                rewards.unlink()
        log.info("launching: %s", shlex.join(cmd))
        rc = subprocess.call(cmd, env={**os.environ, **env})
        if rc != 0:
            log.error("swift rlhf exited with %d", rc)
        return rc

    def publish() -> runs.Manifest:
        last = runs.publish_final(ckpt_dir, final)
        log.info("final RL checkpoint: %s -> %s", final, last)
        print(f"final checkpoint: {final} -> {last}")
        return runs.Manifest(
            key=key, command=_env_prefix(env) + " " + shlex.join(cmd),
            data={"file": str(dataset), "sha256": identity["data_sha256"], "prompts": n},
            model=identity["model"], checkpoint=str(last), final_checkpoint=str(final),
            steps=_global_step(last), rewards=str(rewards))

    return runs.train_once(training, launch, publish)


def run_key(cmd: Sequence[str], env: dict[str, str], data_files: Sequence[str | Path],
            model_path: str) -> tuple[str, dict[str, Any]]:
    """Identity of a GRPO run: the command and reward settings, the data's content hash and the
    start model's identity (a retrained SFT checkpoint at the same path is a new run)."""
    hashes = [runs.file_sha256(f) for f in data_files]
    identity = {"data_sha256": hashes[0] if len(hashes) == 1 else hashes, "model": runs.model_identity(model_path)}
    return runs.short_hash({"argv": list(cmd[1:]), "env": env, **identity}), identity


def _parquet_rows(files: Sequence[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _global_step(checkpoint: Path) -> int | None:
    """Optimizer steps of a HF Trainer checkpoint (trainer_state.json), else its `checkpoint-N` number."""
    state = runs.read_json(checkpoint / "trainer_state.json")
    if "global_step" in state:
        return int(state["global_step"])
    tail = checkpoint.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None
