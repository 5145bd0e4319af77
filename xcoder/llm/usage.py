"""Token, request and cost accounting per stage, and its place in the run manifest."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class StageUsage:
    requests: int = 0           # requests asked for (after de-duplicating identical keys)
    cache_hits: int = 0         # served from the cache without a call
    calls: int = 0              # successful HTTP calls
    attempts: int = 0           # HTTP attempts incl. retries
    retries: int = 0
    errors: int = 0             # requests that came back with .error
    completions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    call_seconds: float = 0.0   # sum of successful call latencies
    wall_seconds: float = 0.0   # wall time inside run()/arun()
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["call_seconds"] = round(out["call_seconds"], 3)
        out["wall_seconds"] = round(out["wall_seconds"], 3)
        out["cost_usd"] = round(out["cost_usd"], 6)
        return out


class UsageMeter:
    """Accumulates StageUsage per stage name; prices are USD per million tokens."""

    def __init__(self, price_in: float = 0.0, price_out: float = 0.0):
        self.price_in = float(price_in)
        self.price_out = float(price_out)
        self.stages: dict[str, StageUsage] = {}

    def stage(self, name: str) -> StageUsage:
        return self.stages.setdefault(name, StageUsage())

    def add_tokens(self, name: str, tokens: Mapping[str, Any] | None) -> None:
        if not tokens:
            return
        usage = self.stage(name)
        p, c = int(tokens.get("prompt") or 0), int(tokens.get("completion") or 0)
        usage.prompt_tokens += p
        usage.completion_tokens += c
        usage.reasoning_tokens += int(tokens.get("reasoning") or 0)
        usage.cost_usd += (p * self.price_in + c * self.price_out) / 1e6

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: usage.as_dict() for name, usage in self.stages.items()}


def format_usage(usage: Mapping[str, Mapping[str, Any]]) -> str:
    """A small fixed-width table of per-stage usage, for the end of a run."""
    cols = ["requests", "cache_hits", "calls", "retries", "errors", "prompt_tokens", "completion_tokens", "cost_usd"]
    header = f"{'stage':<16}" + "".join(f"{c:>18}" for c in cols)
    lines = [header]
    for stage, row in usage.items():
        lines.append(f"{stage:<16}" + "".join(f"{row.get(c, 0):>18}" for c in cols))
    return "\n".join(lines)


def update_manifest(path: str | os.PathLike, usage: Mapping[str, Mapping[str, Any]],
                    key: str = "llm_usage") -> dict[str, Any]:
    """Merge per-stage usage into `manifest.json` under `key` (atomic rewrite; other keys kept)."""
    path = Path(path)
    manifest: dict[str, Any] = {}
    if path.exists():
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"manifest {path} is not a JSON object")
    section = dict(manifest.get(key) or {})
    section.update({k: dict(v) for k, v in usage.items()})
    manifest[key] = section
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return manifest
