"""Estimated precision of a kept task from its verification evidence.

The table (`calibration.json`, beside this module) is measured, not assumed: the real-pool experiment
(`data-recipe/verify_real_experiment.py --write-calibration`) runs the default rule on real LLM
candidate pools and records, per bucket of "share of the n candidates that agree with the golden on
every input", how often the kept golden was truly correct. The verify stage stamps that figure on
each kept task (`evidence.est_precision`), so users can filter RL/SFT data by confidence later.
It was measured on HumanEval-sized functions: read it as a ranking, not a guarantee for harder tasks.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
EDGES = (0.5, 0.75)  # cluster-share bucket boundaries


def bucket_of(cluster_share: float) -> str:
    """The bucket name of a cluster share (share of n agreeing with the golden everywhere)."""
    if cluster_share < EDGES[0]:
        return f"share<{EDGES[0]}"
    if cluster_share < EDGES[1]:
        return f"{EDGES[0]}<=share<{EDGES[1]}"
    return f"share>={EDGES[1]}"


@functools.lru_cache(maxsize=4)
def load_calibration(path: str = str(CALIBRATION_FILE)) -> dict[str, float]:
    """bucket -> measured golden precision ({} if the file is absent)."""
    p = Path(path)
    if not p.is_file():
        return {}
    data = json.loads(p.read_text(encoding="utf-8"))
    return {row["bucket"]: float(row["golden_precision"]) for row in data["buckets"]}


def estimated_precision(evidence: dict[str, Any]) -> float | None:
    """The calibrated precision for a kept task's evidence, or None when there is no figure for it
    (no cluster share recorded, e.g. the paper rule, or no calibration shipped)."""
    share = evidence.get("cluster_share")
    if share is None:
        return None
    return load_calibration().get(bucket_of(float(share)))


def write_calibration(buckets: list[dict[str, Any]], *, source: str, path: Path = CALIBRATION_FILE) -> Path:
    path.write_text(json.dumps({"source": source, "measure": "golden precision of kept tasks (truly correct "
                                "golden / kept) per bucket of cluster_share", "buckets": buckets}, indent=2) + "\n",
                    encoding="utf-8")
    load_calibration.cache_clear()
    return path
