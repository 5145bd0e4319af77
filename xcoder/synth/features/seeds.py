"""Seed snippets for feature extraction: local JSONL / parquet, or a `datasets` hub id when online.

A snippet is `{id, code, question}`. Field names are configurable; a code field holding a list (or
a JSON-encoded list, as TACO's `solutions`) yields up to `solutions_per_item` snippets per row.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from xcoder.synth.common import stable_hash

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Snippet:
    id: str
    code: str
    question: str = ""


@dataclasses.dataclass
class SeedSpec:
    path: str | None = None  # local .jsonl / .json / .parquet
    hub_id: str | None = None  # datasets.load_dataset id (online only)
    hub_split: str = "train"
    hub_config: str | None = None
    code_field: str = "code"
    question_field: str | None = "question"
    id_field: str | None = "id"
    solutions_per_item: int = 1
    limit: int | None = None
    max_code_chars: int = 8000


def _rows_from_path(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"seed file {path} does not exist (synth.features.extract.seed.path)")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
        return
    if path.suffix in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
            if not isinstance(data, list):
                raise ValueError(f"seed file {path}: a .json seed file must hold a list of objects")
            yield from data
            return
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"seed file {path}: line {lineno} is not JSON: {exc}") from exc
        return
    raise ValueError(f"seed file {path}: unsupported suffix {path.suffix!r} (use .jsonl, .json or .parquet)")


def _rows_from_hub(spec: SeedSpec) -> Iterable[dict[str, Any]]:
    import datasets

    log.info("loading seed snippets from the hub: %s (%s)", spec.hub_id, spec.hub_split)
    return datasets.load_dataset(spec.hub_id, spec.hub_config, split=spec.hub_split)


def _codes(value: Any, per_item: int) -> list[str]:
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped.startswith("["):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                decoded = None
            if isinstance(decoded, list):
                value = decoded
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)][:per_item]
    return []


def load_snippets(spec: SeedSpec) -> tuple[list[Snippet], dict[str, int]]:
    """Snippets in input order and counts (`no_code` and `duplicate` rows are dropped; `truncated_code` is kept)."""
    if bool(spec.path) == bool(spec.hub_id):
        raise ValueError("set exactly one of synth.features.extract.seed.path / seed.hub_id")
    rows = _rows_from_path(Path(spec.path)) if spec.path else _rows_from_hub(spec)
    snippets: list[Snippet] = []
    counts = {"rows": 0, "no_code": 0, "duplicate": 0, "truncated_code": 0}
    seen: set[str] = set()
    for rowno, row in enumerate(rows):
        if spec.limit is not None and len(snippets) >= spec.limit:
            break
        counts["rows"] += 1
        if not isinstance(row, dict) or spec.code_field not in row:
            raise ValueError(f"seed row {rowno}: missing code field {spec.code_field!r} "
                             f"(set synth.features.extract.seed.code_field)")
        codes = [c for c in _codes(row[spec.code_field], max(1, spec.solutions_per_item)) if c.strip()]
        if not codes:
            counts["no_code"] += 1
            continue
        question = str(row.get(spec.question_field) or "") if spec.question_field else ""
        base_id = str(row[spec.id_field]) if spec.id_field and row.get(spec.id_field) is not None else None
        for j, code in enumerate(codes):
            if spec.limit is not None and len(snippets) >= spec.limit:
                break
            sid = (f"{base_id}#{j}" if len(codes) > 1 else base_id) if base_id else stable_hash(code, question)
            if sid in seen:  # the same snippet twice would only double-count its features
                counts["duplicate"] += 1
                continue
            seen.add(sid)
            if len(code) > spec.max_code_chars:
                code = code[: spec.max_code_chars]
                counts["truncated_code"] += 1
            snippets.append(Snippet(sid, code, question))
    return snippets, counts
