"""SFT data: synthesis parquet or the released X-Coder-SFT-376k -> one ms-swift `messages` JSONL.

Both sources end up as `{"messages": [..., {"role": "assistant", "content": "<think>…</think>\n\n<answer>"}]}`
rows: the assistant turn keeps the long chain of thought inline, the format the paper trains on
(paper-recipe §7-8). Rows are checked (roles, empty turns, unclosed `<think>`), de-duplicated and
filtered by token length with the model's own tokenizer, so `swift sft` never silently deletes or
truncates an over-long example; every drop is counted by reason in `stats.json`.

Conversion is keyed by a hash of its inputs (source identity, filters, tokenizer): re-running with the
same inputs reuses the JSONL, a change rebuilds it. Files are written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from xcoder.runs import file_sha256, write_json_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the written rows change shape (invalidates converted data)
ROLES = ("system", "user", "assistant")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PERCENTILES = (50, 90, 95, 99)


class SFTDataError(ValueError):
    """The SFT input cannot be converted (missing file or column, nothing left after filtering)."""


@dataclasses.dataclass
class Example:
    """One candidate training example before checks: an id for logs and the chat messages."""

    id: str
    messages: list[dict[str, str]]


@dataclasses.dataclass
class ConvertStats:
    """What the conversion kept and dropped; written next to the JSONL and printed by the stage."""

    source: str
    input: str
    output: str
    tokenizer: str
    max_tokens: int | None
    key: str
    rows_read: int = 0
    rows_written: int = 0
    with_think: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    tokens: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def summary(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        tok = self.tokens
        lengths = (" ".join(f"p{p}={int(tok[f'p{p}'])}" for p in PERCENTILES) + f" max={int(tok['max'])}"
                   if tok else "n/a")
        return (f"SFT data ({self.source}): read {self.rows_read}, wrote {self.rows_written} "
                f"({self.with_think} with <think>), dropped: {drops}; tokens {lengths} -> {self.output}")


def check_messages(messages: Sequence[dict[str, Any]]) -> str | None:
    """Return the drop reason for a malformed conversation, or None when it is trainable.

    Trainable = known roles, non-empty string contents, at least one user turn, ending with an
    assistant turn whose `<think>` block (if any) is closed and followed by a non-empty answer.
    """
    if not messages:
        return "no_messages"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return "bad_role"
        if not isinstance(m.get("content"), str):
            return "bad_content"
        if not m["content"].strip():
            return "empty_turn"
    if not any(m["role"] == "user" for m in messages):
        return "no_user_turn"
    if messages[-1]["role"] != "assistant":
        return "no_assistant_turn"
    answer = messages[-1]["content"]
    if THINK_OPEN in answer or THINK_CLOSE in answer:
        if answer.count(THINK_OPEN) != answer.count(THINK_CLOSE) or answer.rfind(THINK_CLOSE) < answer.find(THINK_OPEN):
            return "unclosed_think"
        if not answer[answer.rfind(THINK_CLOSE) + len(THINK_CLOSE):].strip():
            return "empty_answer"
    return None


def has_think(messages: Sequence[dict[str, str]]) -> bool:
    return THINK_CLOSE in messages[-1]["content"]


# ---------------------------------------------------------------- sources


def synth_examples(path: str | os.PathLike) -> Iterator[Example]:
    """Rows of a synthesis SFT parquet (validated against `SFTRow` on read), streamed a record batch
    at a time: a paper-scale file (hundreds of thousands of long-CoT rows) is never held whole."""
    from xcoder.records import SFTRow, iter_records

    for row in iter_records(path, SFTRow, batch_rows=256):
        yield Example(id=row.id, messages=[{"role": m["role"], "content": m["content"]} for m in row.messages])


def released_examples(path: str, *, data_files: str | list[str] | None = None, split: str = "train",
                      revision: str | None = None, limit: int | None = None) -> Iterator[Example]:
    """Rows of the released `IIGroup/X-Coder-SFT-376k` layout (`query`, `response`) via `datasets`.

    `path` is a hub id (online; `data_files` picks the subset file, e.g. `hybrid_376k.jsonl`), a local
    directory laid out like the hub repo, or a single local `.jsonl`/`.json`/`.parquet` file.
    """
    from datasets import load_dataset

    local = Path(path)
    if local.is_file():
        builder = "parquet" if local.suffix == ".parquet" else "json"
        ds = load_dataset(builder, data_files=str(local), split="train")
    elif local.exists() or not _looks_like_hub_id(path):
        if not local.exists():
            raise SFTDataError(f"released SFT data {path!r}: no such file or directory (and not a hub id)")
        ds = load_dataset(str(local), data_files=data_files, split=split)
    else:
        ds = load_dataset(path, data_files=data_files, split=split, revision=revision)
    missing = [c for c in ("query", "response") if c not in ds.column_names]
    if missing:
        raise SFTDataError(f"released SFT data {path!r}: missing column(s) {missing} (has: {ds.column_names})")
    if limit is not None:
        ds = ds.select(range(min(int(limit), len(ds))))
    for i, row in enumerate(ds):
        query, response = row["query"], row["response"]
        messages = [{"role": "user", "content": query}, {"role": "assistant", "content": response}]
        yield Example(id=str(row.get("id", f"released-{i}")), messages=messages)


def _looks_like_hub_id(path: str) -> bool:
    parts = path.split("/")
    return (len(parts) == 2 and all(parts) and not path.startswith((".", "/", "~"))
            and not path.endswith((".jsonl", ".json", ".parquet")))


# ---------------------------------------------------------------- conversion


def render_for_length(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The text whose token count decides the length filter: the model's chat template when it has
    one (what ms-swift's template produces, up to its default system prompt), else the contents."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return "\n".join(m["content"] for m in messages)


def percentiles(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {}
    ordered = sorted(lengths)
    n = len(ordered)
    out: dict[str, float] = {f"p{p}": float(ordered[min(n - 1, max(0, -(-p * n // 100) - 1))]) for p in PERCENTILES}
    out.update(min=float(ordered[0]), max=float(ordered[-1]), mean=sum(ordered) / n, total=float(sum(ordered)))
    return out


def convert(examples: Iterable[Example], out_path: str | os.PathLike, *, tokenizer: Any,
            stats: ConvertStats, max_tokens: int | None, require_think: bool = False, dedup: bool = True,
            batch_size: int = 256) -> ConvertStats:
    """Check, dedup, length-filter and write `examples` as ms-swift JSONL (atomically); fill `stats`."""
    from tqdm import tqdm

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    dropped: Counter[str] = Counter()
    seen: set[bytes] = set()
    lengths: list[int] = []
    batch: list[Example] = []

    def flush(fh: Any) -> None:
        texts = [render_for_length(tokenizer, ex.messages) for ex in batch]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        for ex, toks in zip(batch, ids):
            if max_tokens is not None and len(toks) > max_tokens:
                dropped["too_long"] += 1
                continue
            lengths.append(len(toks))
            stats.with_think += has_think(ex.messages)
            fh.write(json.dumps({"messages": ex.messages}, ensure_ascii=False) + "\n")
        batch.clear()

    with open(tmp, "w", encoding="utf-8") as fh:
        for ex in tqdm(examples, desc="sft data", unit="row", mininterval=2.0):
            stats.rows_read += 1
            reason = check_messages(ex.messages)
            if reason is None and require_think and not has_think(ex.messages):
                reason = "no_think"
            if reason is None and dedup:
                digest = hashlib.sha1(json.dumps(ex.messages, sort_keys=True).encode()).digest()
                reason = "duplicate" if digest in seen else None
                seen.add(digest)
            if reason is not None:
                dropped[reason] += 1
                log.debug("dropping SFT row %s: %s", ex.id, reason)
                continue
            batch.append(ex)
            if len(batch) >= batch_size:
                flush(fh)
        if batch:
            flush(fh)
    stats.rows_written = len(lengths)
    stats.dropped = dict(sorted(dropped.items()))
    stats.tokens = percentiles(lengths)
    if stats.rows_written == 0:
        tmp.unlink(missing_ok=True)
        raise SFTDataError(f"no trainable SFT rows in {stats.input} (read {stats.rows_read}, dropped {dict(dropped)})")
    os.replace(tmp, out_path)
    for reason, count in sorted(dropped.items()):
        log.warning("dropped %d SFT row(s): %s", count, reason)
    return stats


def source_identity(data_cfg: Any) -> tuple[str, str, dict[str, Any]]:
    """(source name, human-readable input, identity dict for the cache key) of the configured data."""
    source = str(data_cfg.source)
    if source == "synth":
        path = Path(str(data_cfg.train_parquet))
        if not path.exists():
            raise SFTDataError(f"sft.data.train_parquet: {path}: no such file (run `xcoder synth` first, "
                               f"or set sft.data.source=released)")
        return source, str(path), {"sha256": file_sha256(path)}
    if source == "released":
        rel = data_cfg.released
        ident: dict[str, Any] = {"path": str(rel.path), "data_files": _plain(rel.data_files),
                                 "split": str(rel.split), "revision": rel.revision}
        local = Path(str(rel.path))
        if local.is_file():
            ident.update(path=str(local.resolve()), sha256=file_sha256(local))
        return source, str(rel.path), ident
    raise SFTDataError(f"sft.data.source must be 'synth' or 'released', got {source!r}")


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def conversion_key(data_cfg: Any, tokenizer_path: str) -> str:
    """Hash of everything the converted JSONL depends on (source identity, filters, tokenizer)."""
    source, _, ident = source_identity(data_cfg)
    key_obj = {"format": FORMAT_VERSION, "source": source, "input": ident, "tokenizer": tokenizer_path,
               "max_tokens": None if data_cfg.max_tokens is None else int(data_cfg.max_tokens),
               "require_think": bool(data_cfg.require_think), "dedup": bool(data_cfg.dedup),
               "limit": data_cfg.limit}
    return hashlib.sha256(json.dumps(key_obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def output_paths(data_cfg: Any) -> tuple[Path, Path]:
    """(train.jsonl, stats.json) under `sft.data.output_dir`."""
    out_dir = Path(str(data_cfg.output_dir))
    return out_dir / "train.jsonl", out_dir / "stats.json"


def existing(data_cfg: Any, key: str) -> ConvertStats | None:
    """Stats of an already converted JSONL with this key, or None."""
    jsonl, stats_path = output_paths(data_cfg)
    if not (jsonl.exists() and stats_path.exists()):
        return None
    try:
        old = json.loads(stats_path.read_text())
    except json.JSONDecodeError:
        return None
    return ConvertStats(**old) if old.get("key") == key else None


def prepare(data_cfg: Any, tokenizer_path: str, *, force: bool = False) -> tuple[Path, ConvertStats]:
    """Convert the configured source into `<data.output_dir>/train.jsonl` unless an identical
    conversion (same key) is already there; return the JSONL path and its stats."""
    source, input_desc, _ = source_identity(data_cfg)
    key = conversion_key(data_cfg, tokenizer_path)
    jsonl, stats_path = output_paths(data_cfg)
    done = None if force else existing(data_cfg, key)
    if done is not None:
        log.info("SFT data up to date (key %s): %s", key, jsonl)
        return jsonl, done
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    max_tokens = None if data_cfg.max_tokens is None else int(data_cfg.max_tokens)
    stats = ConvertStats(source=source, input=input_desc, output=str(jsonl), tokenizer=tokenizer_path,
                         max_tokens=max_tokens, key=key)
    if source == "synth":
        examples: Iterable[Example] = synth_examples(input_desc)
        if data_cfg.limit is not None:
            examples = (ex for _, ex in zip(range(int(data_cfg.limit)), examples))
    else:
        rel = data_cfg.released
        examples = released_examples(str(rel.path), data_files=_plain(rel.data_files), split=str(rel.split),
                                     revision=rel.revision, limit=data_cfg.limit)
    convert(examples, jsonl, tokenizer=tokenizer, stats=stats, max_tokens=max_tokens,
            require_think=bool(data_cfg.require_think), dedup=bool(data_cfg.dedup),
            batch_size=int(data_cfg.tokenize_batch_size))
    write_json_atomic(stats_path, dataclasses.asdict(stats), sort_keys=True)
    return jsonl, stats


def wait_for(data_cfg: Any, tokenizer_path: str, *, timeout_s: float, poll_s: float = 10.0) -> tuple[Path,
                                                                                                     ConvertStats]:
    """On nodes other than rank 0: wait until rank 0 has written the conversion with our key."""
    import time

    key = conversion_key(data_cfg, tokenizer_path)
    deadline = time.monotonic() + timeout_s
    while True:
        done = existing(data_cfg, key)
        if done is not None:
            return output_paths(data_cfg)[0], done
        if time.monotonic() > deadline:
            raise SFTDataError(f"timed out after {timeout_s:.0f}s waiting for rank 0 to write "
                               f"{output_paths(data_cfg)[1]} with key {key} "
                               "(is sft.output_dir on a shared filesystem?)")
        time.sleep(poll_s)
