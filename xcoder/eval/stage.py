"""The eval stage (`xcoder eval`): LiveCodeBench evaluation (see eval/README.md); the work is in `run.py`."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

log = logging.getLogger(__name__)


def run(cfg: DictConfig, dry_run: bool) -> int:
    from xcoder.eval.run import dry_run_text, print_summary, run_eval

    if dry_run:
        print("xcoder eval plan (nothing loaded or launched):")
        print(dry_run_text(cfg))
        return 0
    try:
        results = run_eval(cfg)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
        log.error("eval failed: %s", exc)
        return 2
    print_summary(results)
    return 1 if results["judge_errors"] else 0
