"""Sampling n completions per problem, saved as they arrive and resumable.

Generations live in `<output_dir>/generations/<key>.jsonl`, where `key` hashes everything that
changes the samples except n (model path and identity: resolved target, config hash, file sizes/mtimes;
backend model name, prompt template version, sampling params):
a rerun reads the file, asks the backend only for the missing samples, and scoring reruns read it
without generating again. A torn last line (killed mid-write) is ignored and counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from xcoder.eval.problems import Problem
from xcoder.eval.prompts import EvalPrompt

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """What the paper leaves open [paper-recipe §10, U]; printed in every report header."""

    n: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int | None = 20
    max_tokens: int = 32768
    seed: int = 42

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SamplingConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        out = cls(**{k: cfg[k] for k in fields if k in cfg})
        if out.n < 1 or out.max_tokens < 1:
            raise ValueError(f"eval.sampling: n and max_tokens must be >= 1, got {out}")
        return out

    def without_n(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("n")
        return d


@dataclasses.dataclass(frozen=True)
class GenRequest:
    """Ask for `count` more samples of one problem; `first_index` numbers them (and seeds them)."""

    problem_id: str
    messages: list[dict[str, str]]
    count: int
    first_index: int


@dataclasses.dataclass(frozen=True)
class Sample:
    problem_id: str
    index: int
    text: str  # the raw completion (reasoning included, if the backend returns it inline)
    finish_reason: str = ""
    reasoning: str = ""  # separate reasoning channel (OpenAI-compatible `reasoning_content`), if any


class Backend(Protocol):
    name: str

    def describe(self) -> dict[str, Any]: ...

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> Iterator[list[Sample]]:
        """Yield samples in batches as they finish (each batch is saved before the next)."""
        ...

    def close(self) -> None: ...


def generation_key(model: str, backend_model: str, prompt: EvalPrompt, sampling: SamplingConfig, *,
                   model_identity: Mapping[str, Any] | None = None) -> str:
    """Cache key of a generation run; `model_identity` (xcoder.runs.model_identity) makes
    a model retrained at the same path a new key."""
    blob = json.dumps({"model": model, "backend_model": backend_model, "prompt": prompt.version_id,
                       "sampling": sampling.without_n(), "model_identity": model_identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class GenerationStore:
    """Append-only JSONL of samples for one generation key."""

    def __init__(self, path: Path, manifest: Mapping[str, Any]):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path = path.with_suffix(".manifest.json")
        if not manifest_path.exists():
            tmp = manifest_path.with_name(manifest_path.name + ".tmp")
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
            os.replace(tmp, manifest_path)
        self.torn_lines = 0

    def load(self) -> dict[str, dict[int, Sample]]:
        samples: dict[str, dict[int, Sample]] = {}
        if not self.path.exists():
            return samples
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    row = json.loads(line)
                    sample = Sample(**row)
                except (ValueError, TypeError):
                    self.torn_lines += 1
                    log.warning("%s:%d: unreadable generation line ignored (torn write?)", self.path, number)
                    continue
                samples.setdefault(sample.problem_id, {})[sample.index] = sample
        return samples

    def append(self, batch: Iterable[Sample]) -> None:
        lines = "".join(json.dumps(dataclasses.asdict(s), ensure_ascii=False) + "\n" for s in batch)
        if not lines:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            if fh.tell() > 0 and not self._ends_with_newline():
                fh.write("\n")  # isolate a torn last line so it stays one unreadable line
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"


def missing_requests(problems: Sequence[Problem], prompt: EvalPrompt, have: Mapping[str, Mapping[int, Sample]],
                     n: int) -> list[GenRequest]:
    """One request per problem lacking samples 0..n-1 (contiguous: asks from the first gap)."""
    out = []
    for p in problems:
        done = have.get(p.problem_id, {})
        first = next((i for i in range(n) if i not in done), n)
        if first < n:
            out.append(GenRequest(p.problem_id, prompt.render(p), n - first, first))
    return out


def generate_all(problems: Sequence[Problem], prompt: EvalPrompt, make_backend: Callable[[], Backend] | None,
                 sampling: SamplingConfig, store: GenerationStore) -> dict[str, list[Sample]]:
    """Fill the store up to n samples per problem and return them (first n, in index order).
    The backend is built only when samples are missing; `make_backend=None` means score-only."""
    have = store.load()
    todo = missing_requests(problems, prompt, have, sampling.n)
    if todo and make_backend is None:
        raise RuntimeError(f"score-only run, but {sum(r.count for r in todo)} samples of {len(todo)} problems are "
                           f"missing from {store.path}; run with eval.generation.mode=generate")
    if todo:
        backend = make_backend()
        log.info("generating %d samples for %d problems with %s (%d already saved)",
                 sum(r.count for r in todo), len(todo), backend.name, sum(len(v) for v in have.values()))
        try:
            for batch in backend.generate(todo, sampling):
                store.append(batch)
        finally:
            backend.close()
        have = store.load()
    else:
        log.info("all %d x %d samples already saved in %s", len(problems), sampling.n, store.path)
    out: dict[str, list[Sample]] = {}
    missing = []
    for p in problems:
        got = have.get(p.problem_id, {})
        lacking = [i for i in range(sampling.n) if i not in got]
        if lacking:
            missing.append(f"{p.problem_id} (samples {lacking[:5]}{'...' if len(lacking) > 5 else ''})")
        else:
            out[p.problem_id] = [got[i] for i in range(sampling.n)]
    if missing:
        raise RuntimeError(
            f"{len(missing)} problems lack samples after generation (failed requests?): {', '.join(missing[:5])}; "
            f"rerun the same command to resume (saved samples are kept in {store.path})")
    return out
