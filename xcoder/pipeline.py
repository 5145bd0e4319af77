"""`xcoder pipeline`: synth -> sft -> rl -> eval, each stage a separate process reading the
previous stage's files from disk, then one markdown report over every stage's artifacts.

Stages run as subprocesses (`python -m xcoder.cli <stage> <overrides>`) on purpose: it is the same
command a user or a cluster job runs, and nothing can leak between stages in memory. Resuming is the
stages' job (each skips its own finished work), so rerunning the pipeline is always safe.

Where the chain runs depends on `cluster`:
  local  run the stages here, one after the other (`--dry-run`: each stage's own `--dry-run`)
  slurm  submit one sbatch job per stage, chained with `--dependency=afterok:` (`--dry-run`: print the chain)
  ray    run the stages on the Ray head node after `scripts/ray_start.sh` (`--dry-run`: print the commands)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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

from xcoder.config import REPO_ROOT
from xcoder.registry import STAGES
from xcoder.report import write_report
from xcoder.stage import stage_main

log = logging.getLogger(__name__)

KNOWN_STAGES = tuple(STAGES)  # pipeline order
CLUSTERS = ("local", "slurm", "ray")
BANNER = "=" * 8


class PipelineError(ValueError):
    """The pipeline request cannot run as given (unknown stage, bad cluster settings, sbatch failure)."""


@dataclasses.dataclass
class StageRun:
    """One stage process of this pipeline invocation (what the report's timing table shows)."""

    stage: str
    command: list[str]
    returncode: int | None = None
    seconds: float = 0.0
    started: str = ""


def checked_stages(stages: Sequence[str]) -> list[str]:
    """`pipeline.stages`, validated: known names, no repeats, in the chain's order."""
    stages = [str(s) for s in stages]
    unknown = [s for s in stages if s not in KNOWN_STAGES]
    if unknown:
        raise PipelineError(f"pipeline.stages has unknown stage(s) {unknown}; known stages: {list(KNOWN_STAGES)}")
    if not stages:
        raise PipelineError("pipeline.stages is empty; choose from " + str(list(KNOWN_STAGES)))
    if len(set(stages)) != len(stages):
        raise PipelineError(f"pipeline.stages repeats a stage: {stages}")
    order = [KNOWN_STAGES.index(s) for s in stages]
    if order != sorted(order):
        raise PipelineError(f"pipeline.stages {stages} is out of order; each stage reads the previous one's "
                            f"files, so keep the order {list(KNOWN_STAGES)}")
    return stages


def stage_command(stage: str, overrides: Sequence[str], dry_run: bool = False) -> list[str]:
    """The command one stage runs as: the same `xcoder <stage>` a user types, in this interpreter."""
    cmd = [sys.executable, "-m", "xcoder.cli", stage, *overrides]
    return cmd + ["--dry-run"] if dry_run else cmd


def user_command(stage: str, overrides: Sequence[str], dry_run: bool = False) -> str:
    """`xcoder <stage> ...` as a user would type it (for printed plans)."""
    return shlex.join(["xcoder", stage, *overrides, *(["--dry-run"] if dry_run else [])])


def _fmt_seconds(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60)
    return f"{int(minutes)}m{sec:04.1f}s" if minutes else f"{sec:.1f}s"


# ---- local (and Ray head node) -------------------------------------------------------------------
def run_chain(cfg: DictConfig, stages: Sequence[str], overrides: Sequence[str], *, dry_run: bool,
              extra: dict[str, list[str]] | None = None) -> int:
    """Run the stages here, in order; stop at the first failure. Returns the pipeline's exit code."""
    extra = extra or {}
    runs: list[StageRun] = []
    t0 = time.perf_counter()
    failed: StageRun | None = None
    for i, stage in enumerate(stages, 1):
        run = StageRun(stage, stage_command(stage, [*overrides, *extra.get(stage, [])], dry_run),
                       started=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        header = f"[pipeline {i}/{len(stages)}] {stage}"
        print(f"\n{BANNER} {header} started (pipeline elapsed {_fmt_seconds(time.perf_counter() - t0)}): "
              f"{shlex.join(run.command)}", flush=True)
        start = time.perf_counter()
        try:
            run.returncode = subprocess.call(run.command)
        except KeyboardInterrupt:
            run.returncode = 130
        run.seconds = time.perf_counter() - start
        runs.append(run)
        status = "done" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        print(f"{BANNER} {header} {status} in {_fmt_seconds(run.seconds)} "
              f"(pipeline elapsed {_fmt_seconds(time.perf_counter() - t0)})", flush=True)
        if run.returncode != 0:
            failed = run
            break
    total = time.perf_counter() - t0
    print(f"\n{BANNER} pipeline timings: " + ", ".join(f"{r.stage} {_fmt_seconds(r.seconds)}" for r in runs)
          + f"; total {_fmt_seconds(total)}", flush=True)
    if not dry_run:
        _write_timings(cfg, runs, total)
        report = write_report(cfg, [dataclasses.asdict(r) for r in runs], total_seconds=total)
        print(f"report: {report}", flush=True)
    if failed is not None:
        not_started = list(stages[stages.index(failed.stage) + 1:])
        print(f"xcoder pipeline: stage '{failed.stage}' failed with exit code {failed.returncode} "
              f"after {_fmt_seconds(failed.seconds)}"
              + (f"; not started: {', '.join(not_started)}" if not_started else "")
              + ". Its output is above. Fix the cause and rerun the same command: finished work is skipped.",
              file=sys.stderr, flush=True)
        rc = int(failed.returncode or 1)
        return rc if rc > 0 else 128 - rc  # killed by signal N -> 128 + N, like a shell
    return 0


def _write_timings(cfg: DictConfig, runs: Sequence[StageRun], total: float) -> None:
    """`<run.output_dir>/pipeline.json`: this invocation's per-stage wall time (atomic write)."""
    path = Path(str(cfg.pipeline.timings))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"run": str(cfg.run.name), "total_seconds": round(total, 2),
                               "stages": [dataclasses.asdict(r) for r in runs]}, indent=1) + "\n")
    os.replace(tmp, path)


# ---- slurm ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class SlurmJob:
    """One sbatch submission of the chain: options, script and its arguments."""

    stage: str
    options: list[str]
    script: str
    args: list[str]
    plan: list[str]  # the overrides the job's `xcoder <stage>` ends up with (for its --dry-run line)

    def argv(self, dependency: str | None) -> list[str]:
        dep = [f"--dependency=afterok:{dependency}"] if dependency else []
        return ["sbatch", "--parsable", *dep, *self.options, self.script, *self.args]


def script_overrides(cfg: DictConfig, stage: str) -> list[str]:
    """What a stage's own sbatch script puts in front of the pipeline's overrides (see those scripts;
    the node/GPU counts are the ones the pipeline requests from sbatch)."""
    if stage == "sft":
        return ["cluster=slurm"]
    if stage == "rl":
        return ["cluster=ray", f"rl.nnodes={cfg.rl.nnodes}", f"rl.gpus_per_node={cfg.rl.gpus_per_node}",
                "rl.reward.judge.mode=server"]
    return []


def _without_cluster(overrides: Sequence[str]) -> list[str]:
    """Stage recipes' sbatch scripts choose their own `cluster=` option (sft: slurm, rl: ray)."""
    return [o for o in overrides if not o.lstrip("+~").startswith("cluster=")]


def slurm_jobs(cfg: DictConfig, stages: Sequence[str], overrides: Sequence[str]) -> list[SlurmJob]:
    """The sbatch submissions of the chain, one per stage (resources from the stage's config)."""
    slurm = cfg.pipeline.slurm
    scripts = OmegaConf.to_container(slurm.stage_scripts, resolve=True) or {}
    log_dir = Path(str(slurm.log_dir))
    common = [f"--export=ALL,XCODER_ROOT={REPO_ROOT}"]
    if cfg.cluster.get("partition"):
        common.append(f"--partition={cfg.cluster.partition}")
    if cfg.cluster.get("account"):
        common.append(f"--account={cfg.cluster.account}")
    common += [str(a) for a in slurm.extra_args]
    jobs = []
    for stage in stages:
        opts = [f"--job-name=xcoder-{cfg.run.name}-{stage}", f"--output={log_dir}/{stage}-%j.out", *common]
        if stage == "sft":
            opts += [f"--nodes={cfg.cluster.nnodes}", f"--gpus-per-node={cfg.cluster.gpus_per_node}"]
        elif stage == "rl":
            opts += [f"--nodes={cfg.rl.nnodes}", f"--gpus-per-node={cfg.rl.gpus_per_node}"]
        elif stage == "eval":
            opts += ["--nodes=1", f"--gpus-per-node={cfg.cluster.gpus_per_node}", f"--time={cfg.cluster.time}"]
        else:  # synth: CPU work + calls to the LLM endpoints in llm.endpoints
            opts += ["--nodes=1", f"--time={cfg.cluster.time}"]
        if stage in scripts:
            args = _without_cluster(overrides)
            jobs.append(SlurmJob(stage, opts, str(scripts[stage]), args, [*script_overrides(cfg, stage), *args]))
        else:
            jobs.append(SlurmJob(stage, opts, str(slurm.stage_script), [stage, *overrides], list(overrides)))
    for job in jobs:
        if not Path(job.script).is_file():
            raise PipelineError(f"sbatch script for stage {job.stage} not found: {job.script} "
                                f"(pipeline.slurm.stage_scripts / pipeline.slurm.stage_script)")
    return jobs


def print_slurm_chain(cfg: DictConfig, stages: Sequence[str], overrides: Sequence[str]) -> int:
    jobs = slurm_jobs(cfg, stages, overrides)
    print(f"# xcoder pipeline {cfg.run.name} on Slurm: {len(jobs)} jobs, each starts only after the previous "
          f"one succeeded (afterok). Run from the repository root; outputs/ must be on a shared filesystem.")
    print("# Each stage's own plan (what its job will launch):")
    for job in jobs:
        print(f"#   {user_command(job.stage, job.plan, dry_run=True)}")
    print("set -euo pipefail")
    print(f"mkdir -p {shlex.quote(str(cfg.pipeline.slurm.log_dir))}")
    prev = None
    for job in jobs:
        dep = f"${{{prev}%%;*}}" if prev else None
        argv = job.argv("DEP" if dep else None)
        line = shlex.join(argv)
        if dep:
            line = line.replace("--dependency=afterok:DEP", f"--dependency=afterok:{dep}")
        print(f"{job.stage}=$({line})")
        prev = job.stage
    print("echo \"submitted: " + " ".join(f"{j.stage}=${j.stage}" for j in jobs) + "\"")
    return 0


def submit_slurm_chain(cfg: DictConfig, stages: Sequence[str], overrides: Sequence[str]) -> int:
    """Submit the chain with real sbatch calls; job ids go to `<slurm.log_dir>/jobs.json`."""
    jobs = slurm_jobs(cfg, stages, overrides)
    if shutil.which("sbatch") is None:
        raise PipelineError("cluster=slurm: `sbatch` is not on PATH (run on a Slurm login node, or "
                            "add --dry-run to print the chain)")
    log_dir = Path(str(cfg.pipeline.slurm.log_dir))
    log_dir.mkdir(parents=True, exist_ok=True)
    submitted: list[dict[str, Any]] = []
    prev: str | None = None
    for job in jobs:
        argv = job.argv(prev)
        print(f"{BANNER} submit {job.stage}: {shlex.join(argv)}", flush=True)
        proc = subprocess.run(argv, capture_output=True, text=True)
        job_id = proc.stdout.strip().split(";")[0]
        if proc.returncode != 0 or not job_id:
            done = ", ".join(f"{s['stage']}={s['job_id']}" for s in submitted) or "none"
            raise PipelineError(f"sbatch for stage {job.stage} failed (exit {proc.returncode}): "
                                f"{proc.stderr.strip() or proc.stdout.strip()}; already submitted: {done}")
        submitted.append({"stage": job.stage, "job_id": job_id, "argv": argv})
        print(f"{BANNER} {job.stage}: job {job_id}", flush=True)
        prev = job_id
    (log_dir / "jobs.json").write_text(json.dumps(submitted, indent=1) + "\n")
    print("submitted: " + " ".join(f"{s['stage']}={s['job_id']}" for s in submitted))
    print(f"logs: {log_dir}/<stage>-<jobid>.out; when the last job is done, write the report with: "
          f"python -m xcoder.report {shlex.join(overrides)}")
    return 0


# ---- ray ------------------------------------------------------------------------------------------
def ray_extra(cfg: DictConfig) -> dict[str, list[str]]:
    extra = OmegaConf.to_container(cfg.pipeline.ray.stage_overrides, resolve=True) or {}
    return {str(k): [str(v) for v in vals] for k, vals in extra.items()}  # type: ignore[union-attr]


def print_ray_chain(cfg: DictConfig, stages: Sequence[str], overrides: Sequence[str]) -> int:
    nnodes = max(int(cfg.cluster.nnodes), int(cfg.rl.nnodes) if "rl" in stages else 1)
    gpus = cfg.cluster.gpus_per_node
    extra = ray_extra(cfg)
    print(f"# xcoder pipeline {cfg.run.name} on a Ray cluster of {nnodes} node(s). outputs/ must be on a "
          f"shared filesystem.")
    print("# 1. Start the cluster (node-local judge servers for the RL reward):")
    print(f"bash scripts/ray_start.sh head --nnodes {nnodes} --gpus {gpus} --judge          # on the head node")
    if nnodes > 1:
        print(f"bash scripts/ray_start.sh worker --address HEAD_IP:6379 --gpus {gpus} --judge   # on each other node")
    print("# 2. On the head node, in order (each stage reads the previous one's files):")
    for stage in stages:
        if stage == "sft" and int(cfg.cluster.nnodes) > 1:
            last_rank = int(cfg.cluster.nnodes) - 1
            print(f"# sft on {cfg.cluster.nnodes} nodes: one launcher per node (NODE_RANK 0..{last_rank}):")
            print(f"NNODES={cfg.cluster.nnodes} NODE_RANK=$NODE_RANK MASTER_ADDR=HEAD_IP MASTER_PORT=29500 "
                  f"NPROC_PER_NODE={gpus} bash sft-recipe/train_sft.sh {shlex.join(overrides)}")
            continue
        print(user_command(stage, [*overrides, *extra.get(stage, [])]))
    print("# or all of them with one command (it resumes finished work when rerun):")
    print(shlex.join(["xcoder", "pipeline", *overrides]))
    print("# Each stage's own plan:")
    for stage in stages:
        print(f"#   {user_command(stage, [*overrides, *extra.get(stage, [])], dry_run=True)}")
    return 0


# ---- entry ----------------------------------------------------------------------------------------
def run_pipeline(cfg: DictConfig, overrides: Sequence[str], dry_run: bool) -> int:
    try:
        stages = checked_stages(cfg.pipeline.stages)
        cluster = str(cfg.cluster.name)
        if cluster not in CLUSTERS:
            raise PipelineError(f"cluster.name={cluster!r} is not one of {list(CLUSTERS)}")
        if cluster == "slurm":
            if dry_run:
                return print_slurm_chain(cfg, stages, overrides)
            return submit_slurm_chain(cfg, stages, overrides)
        if cluster == "ray":
            if dry_run:
                return print_ray_chain(cfg, stages, overrides)
            if "sft" in stages and int(cfg.cluster.nnodes) > 1:
                raise PipelineError(f"cluster=ray with cluster.nnodes={cfg.cluster.nnodes}: multi-node SFT needs one "
                                    "launcher per node (see --dry-run), which this head-node chain cannot start; "
                                    "run SFT by hand or use cluster=slurm")
            return run_chain(cfg, stages, overrides, dry_run=False, extra=ray_extra(cfg))
        return run_chain(cfg, stages, overrides, dry_run=dry_run)
    except PipelineError as exc:
        print(f"xcoder pipeline: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str]) -> int:
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]

    def runner(cfg: DictConfig, dry_run: bool) -> int:
        return run_pipeline(cfg, overrides, dry_run)

    return stage_main(argv, stage="pipeline", description="Run synth -> sft -> rl -> eval, then write a report "
                      "(cluster=slurm: submit an sbatch chain; cluster=ray: run on the Ray head node).",
                      runner=runner)
