"""The SynthSmith stage registry: names in pipeline order -> `module:function` (imported lazily).

Each stage function takes the composed config and returns a dict of counts (written to the run
manifest and the data card). Stages read their inputs from the previous stage's files only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

StageFn = Callable[[DictConfig], dict[str, Any]]

STAGES: dict[str, str] = {
    "features.extract": "xcoder.synth.features.stages:extract",  # seed code -> per-snippet trees
    "features.evolve": "xcoder.synth.features.stages:evolve",  # merged tree -> evolved tree
    "features.sample": "xcoder.synth.features.stages:sample",  # tree -> FeatureSubtree parquet
    # your own problems + candidates (JSONL) -> Task/Solution/TestInput (not in `all`)
    "import": "xcoder.synth.importer:run",
    "tasks": "xcoder.synth.tasks.stage:run",  # subtrees -> Task parquet (stage 1 + stage 2)
    "solutions": "xcoder.synth.solutions.stage:run",  # tasks -> Solution parquet
    "tests": "xcoder.synth.testgen.stage:run",  # tasks -> TestInput parquet
    "verify": "xcoder.synth.verify.stage:run",  # solutions x tests -> Verification parquet
    "export": "xcoder.synth.export.stage:run",  # -> SFT / RL parquet + data card
}


def resolve(name: str) -> StageFn:
    if name not in STAGES:
        raise KeyError(f"unknown synth stage {name!r}; known: {', '.join(STAGES)}")
    module, func = STAGES[name].split(":")
    return getattr(importlib.import_module(module), func)
