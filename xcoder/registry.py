"""The stage registry: the one table the CLI, the pipeline and the report read.

Every stage follows one contract: `xcoder/<name>/stage.py` defines `run(cfg, dry_run) -> int` (a
process exit code) and `xcoder/<name>/summary.py` defines `summarize(cfg, report_dir) -> list[str]`
(its report section, read back from the files it wrote). A stage is added here once and appears in `xcoder --help`, in
`pipeline.stages` (in this order: each stage reads the files of the ones before it) and as a section
of the pipeline report. Stage modules are imported lazily, so `xcoder --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    help: str  # one line in `xcoder --help`
    description: str  # `xcoder <name> --help`
    title: str  # the stage's section heading in the pipeline report

    @property
    def module(self) -> str:
        return f"xcoder.{self.name}.stage"

    def run(self, cfg: DictConfig, dry_run: bool) -> int:
        return int(importlib.import_module(self.module).run(cfg, dry_run) or 0)

    def summarize(self, cfg: DictConfig, report_dir: Path) -> list[str]:
        return importlib.import_module(f"xcoder.{self.name}.summary").summarize(cfg, report_dir)

    def main(self, argv: Sequence[str]) -> int:
        """`xcoder <name> [--cfg job] [--dry-run] [--debug] key=value ...`"""
        from xcoder.stage import stage_main

        return stage_main(argv, stage=self.name, description=self.description, runner=self.run)


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("synth", "SynthSmith: features -> tasks -> solutions -> tests -> verified SFT/RL parquet",
          "SynthSmith synthesis.",
          "SynthSmith synthesis (features → tasks → solutions → tests → dual verification → export)"),
    Stage("sft", "supervised fine-tuning with ms-swift (swift sft)",
          "Supervised fine-tuning with ms-swift: convert the SFT data (synthesis parquet or the released "
          "X-Coder-SFT-376k), run `swift sft` with the paper recipe, and link the last checkpoint at "
          "sft.final_checkpoint for RL/eval. --dry-run prints the exact command.",
          "SFT (ms-swift)"),
    Stage("rl", "GRPO with verl (or ms-swift) and the judge as reward",
          "GRPO with verl (paper) or ms-swift (single node / CPU).",
          "RL (GRPO, judge reward)"),
    Stage("eval", "LiveCodeBench avg@k evaluation with vLLM / OpenAI-compatible / HF generation",
          "LiveCodeBench evaluation.",
          "Evaluation (LiveCodeBench avg@k)"),
)}


def stage_cli(name: str) -> Callable[[Sequence[str]], int]:
    """The CLI entry `main(argv) -> int` of stage `name` (what `xcoder <name> ...` runs)."""
    return STAGES[name].main
