"""The synth stage (`xcoder synth`): run SynthSmith stages in order and write a run manifest.

`synth.stages=[all]` runs features.sample, tasks, solutions, tests, verify, export; any subset in
pipeline order may be given (`synth.stages=[tests,verify,export]`). Every stage is resumable, so
rerunning after a crash or kill continues where it stopped.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from xcoder.runs import write_json_atomic
from xcoder.synth.stages import STAGES, resolve

log = logging.getLogger(__name__)

ALL = ("features.sample", "tasks", "solutions", "tests", "verify", "export")


def selected_stages(cfg: DictConfig) -> list[str]:
    wanted = list(cfg.synth.stages)
    names: list[str] = []
    for name in wanted:
        names.extend(ALL if name == "all" else [str(name)])
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise KeyError(f"synth.stages: unknown stage(s) {unknown}; known: all, {', '.join(STAGES)}")
    order = list(STAGES)
    return sorted(dict.fromkeys(names), key=order.index)


def run_stages(cfg: DictConfig) -> dict[str, Any]:
    """Run the selected stages; return (and write) the manifest with per-stage counts and timings."""
    out = Path(cfg.synth.output_dir)
    manifest: dict[str, Any] = {"run": cfg.run.name, "stages": {},
                                "config": OmegaConf.to_container(cfg.synth, resolve=True),
                                "llm": {"model": cfg.llm.model, "mode": cfg.llm.mode}}
    path = out / "manifest.json"
    for name in selected_stages(cfg):
        log.info("synth: stage %s", name)
        t0 = time.monotonic()
        counts = resolve(name)(cfg)
        manifest["stages"][name] = {"seconds": round(time.monotonic() - t0, 2), **(counts or {})}
        write_json_atomic(path, manifest)
    manifest["llm_usage"] = {}
    for counts in manifest["stages"].values():  # client.usage() is keyed by accounting bucket (= stage)
        if isinstance(counts.get("llm_usage"), dict):
            manifest["llm_usage"].update(counts["llm_usage"])
    write_json_atomic(path, manifest)
    return manifest


def run(cfg: DictConfig, dry_run: bool) -> int:
    try:
        stages = selected_stages(cfg)
    except KeyError as exc:
        log.error("%s", exc.args[0])
        return 2
    if dry_run:
        print("xcoder synth would run: " + " -> ".join(stages))
        print(f"output: {cfg.synth.output_dir}  SFT: {cfg.synth.sft_parquet}  RL: {cfg.synth.rl_parquet}")
        return 0
    manifest = run_stages(cfg)
    for name, counts in manifest["stages"].items():
        short = {k: v for k, v in counts.items() if k in ("kept", "dropped", "sft_rows", "rl_rows", "resumed_units",
                                                            "processed_units", "seconds")}
        print(f"{name}: {short}")
    if "export" in manifest["stages"]:
        print(f"SFT parquet: {cfg.synth.sft_parquet}\nRL parquet:  {cfg.synth.rl_parquet}\n"
              f"data card:   {manifest['stages']['export'].get('data_card')}")
    return 0
