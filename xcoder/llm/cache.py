"""Append-only, crash-safe response cache: what makes runs resumable and replayable.

Format: a directory of JSONL shards `shard-<host>-<pid>-<ns>.jsonl`. Each line is one finished
request: `{"v": 1, "key", "model", "template_version", "params", "messages", "completions":
[{"text", "reasoning", "finish_reason", "provenance"}], "usage", "created"}`.

Why JSONL shards and not sqlite (WAL): synthesis fleets run many client processes, often on several
nodes over a shared filesystem (NFS/Lustre), where sqlite's locking and WAL shared memory are not
reliable. One shard per writing process needs no locks at all; lines are human-readable, greppable,
diffable and can be hand-written and shipped in git (the demo's replay cache). Crash safety: each
line is written with one `os.write` on an `O_APPEND` fd *before* the request counts as done, so a
`kill -9` loses nothing that was reported finished (the page cache survives a process kill); shards
are `fsync`'d every `fsync_s` seconds and on close (bounds the power-loss window without paying a
disk flush per request). A torn line (power loss, full disk) can only be the end of a shard, since
a shard is never reopened for writing; it is detected on load (no trailing newline / bad JSON / key
mismatch) and skipped with a warning. Memory: the index keeps only key -> (shard, offset, length);
responses are read back with `pread` on a hit, so a cache of many GB costs little RAM.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xcoder.llm.reasoning import split_reasoning
from xcoder.llm.types import ChatRequest, Completion

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    """OmegaConf containers / tuples -> plain JSON types; integral floats -> int (1.0 and 1 key alike)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {str(k): _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    if isinstance(value, (str, int)):  # subclasses (str/int enums)
        return value
    if hasattr(value, "item") and callable(value.item) and not hasattr(value, "__len__"):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, float):
        return int(value) if value.is_integer() else float(value)
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot put a {type(value).__name__} into an LLM request: {value!r}")


def canonical_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Sampling params as they enter the cache key: None values dropped, `n` defaulted to 1."""
    out = {str(k): _plain(v) for k, v in (params or {}).items() if v is not None}
    out.setdefault("n", 1)
    return out


def canonical_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not messages:
        raise ValueError("a chat request needs at least one message")
    return [_plain(m) for m in messages]


def _key_of_canonical(model: str, messages: list, params: dict, template_version: str) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params, "template_version": template_version},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def request_key(model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None,
                template_version: str) -> str:
    """sha256 of the canonical JSON of (model, messages, params incl. n/seed, template_version)."""
    return _key_of_canonical(model, canonical_messages(messages), canonical_params(params), template_version or "")


def key_of(request: ChatRequest, default_model: str) -> str:
    return request_key(request.model or default_model, request.messages, request.params, request.template_version)


class Prepared:
    """A request in canonical form (computed once: key, body and cache line all reuse it)."""

    __slots__ = ("key", "model", "messages", "params", "template_version")

    def __init__(self, request: ChatRequest, default_model: str):
        self.model = request.model or default_model
        self.messages = canonical_messages(request.messages)
        self.params = canonical_params(request.params)
        self.template_version = request.template_version or ""
        self.key = _key_of_canonical(self.model, self.messages, self.params, self.template_version)


class ResponseCache:
    """Key -> recorded completions, backed by the JSONL shards in `cache_dir` (see module doc)."""

    def __init__(self, cache_dir: str | os.PathLike, *, fsync_s: float = 1.0, readonly: bool = False,
                 shard_name: str | None = None):
        """`shard_name=None`: this writer gets a fresh shard of its own (safe with concurrent writers).
        A fixed `shard_name` appends to that file (hand-recorded caches; one writer at a time)."""
        self.dir = Path(cache_dir)
        self.shard_name = shard_name
        self.fsync_s = float(fsync_s)
        self.readonly = readonly
        self._index: dict[str, tuple[Path, int, int]] = {}
        self._fd: int | None = None
        self._shard: Path | None = None
        self._last_fsync = 0.0
        self._dirty = False
        self._lock = threading.Lock()
        self.skipped_lines = 0
        if self.dir.exists():
            if not self.dir.is_dir():
                raise NotADirectoryError(f"llm cache_dir {self.dir} exists and is not a directory")
            self._load()

    # ---- reading -------------------------------------------------------------------------------------
    def _load(self) -> None:
        for shard in sorted(self.dir.glob("*.jsonl")):
            self._load_shard(shard)
        if self._index:
            log.info("llm cache %s: %d recorded requests", self.dir, len(self._index))

    def _load_shard(self, shard: Path) -> None:
        """Index a shard line by line (key -> offset, length): memory stays one line, never the
        shard (a paper-scale cache holds GBs of long-CoT answers)."""
        offset = 0
        with open(shard, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                start, offset = offset, offset + len(line)
                if not line.endswith(b"\n"):  # no newline: the writer died mid-line
                    log.warning("llm cache %s: torn last line %d (%d bytes, no newline) skipped", shard, lineno,
                                len(line))
                    self.skipped_lines += 1
                    break
                if line.strip():
                    key = self._validate(line[:-1], shard, lineno)
                    if key is not None:
                        self._index.setdefault(key, (shard, start, len(line) - 1))

    def _validate(self, line: bytes, shard: Path, lineno: int) -> str | None:
        try:
            entry = json.loads(line)
            key = entry["key"]
            expected = request_key(entry["model"], entry["messages"], entry["params"],
                                   entry.get("template_version", ""))
            if not isinstance(entry["completions"], list):
                raise TypeError("completions is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("llm cache %s: line %d is not a valid record (%s); skipped", shard, lineno, exc)
            self.skipped_lines += 1
            return None
        if key != expected:
            log.warning("llm cache %s: line %d key %s does not match its request (recomputed %s); skipped",
                        shard, lineno, key[:16], expected[:16])
            self.skipped_lines += 1
            return None
        return key

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> Iterable[str]:
        return self._index.keys()

    def get_entry(self, key: str) -> dict[str, Any] | None:
        loc = self._index.get(key)
        if loc is None:
            return None
        path, offset, length = loc
        with open(path, "rb") as fh:
            raw = os.pread(fh.fileno(), length, offset)
        return json.loads(raw)

    def get(self, key: str) -> list[Completion] | None:
        entry = self.get_entry(key)
        if entry is None:
            return None
        return [Completion.from_json(c) for c in entry["completions"]]

    # ---- writing -------------------------------------------------------------------------------------
    def _open_shard(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.shard_name is None:
            name = f"shard-{socket.gethostname()}-{os.getpid()}-{time.time_ns():x}.jsonl"
            self._shard = self.dir / name
            self._fd = os.open(self._shard, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            return self._fd
        self._shard = self.dir / self.shard_name
        self._fd = os.open(self._shard, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":  # torn tail: end it so the next line stays whole
            os.write(self._fd, b"\n")
        return self._fd

    def put(self, key: str, *, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None,
            template_version: str, completions: Sequence[Completion], usage: Mapping[str, Any] | None = None,
            canonical: bool = False) -> bool:
        """Append one finished request; returns False (and writes nothing) if the key is already cached.

        `canonical=True`: messages/params are already canonical (a `Prepared`), skip re-normalising.
        """
        if self.readonly:
            raise PermissionError(f"llm cache {self.dir} is read-only (replay mode)")
        entry = {
            "v": CACHE_FORMAT_VERSION, "key": key, "model": model, "template_version": template_version or "",
            "params": params if canonical else canonical_params(params),
            "messages": messages if canonical else canonical_messages(messages),
            "completions": [c.to_json() for c in completions], "usage": dict(usage or {}),
            "created": round(time.time(), 3),
        }
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if key in self._index:
                return False
            fd = self._fd if self._fd is not None else self._open_shard()
            offset = os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(line)
            while view:  # os.write may write less than asked (signals, pipes); finish the line
                written = os.write(fd, view)
                view = view[written:]
            self._index[key] = (self._shard, offset, len(line) - 1)  # type: ignore[arg-type]
            self._dirty = True
            now = time.monotonic()
            if now - self._last_fsync >= self.fsync_s:
                os.fsync(fd)
                self._last_fsync = now
                self._dirty = False
        return True

    def flush(self) -> None:
        with self._lock:
            if self._fd is not None and self._dirty:
                os.fsync(self._fd)
                self._dirty = False
                self._last_fsync = time.monotonic()

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _as_completion(item: Completion | str | Mapping[str, Any]) -> Completion:
    if isinstance(item, Completion):
        return item
    if isinstance(item, str):
        reasoning, text = split_reasoning(item)
        return Completion(text=text, reasoning=reasoning, finish_reason="stop")
    if isinstance(item, Mapping):
        return Completion.from_json({"finish_reason": "stop", **item})
    raise TypeError(f"a recorded completion must be a str, dict or Completion, got {type(item).__name__}")


def record(cache_dir: str | os.PathLike, request: ChatRequest,
           completions: Sequence[Completion | str | Mapping[str, Any]],
           *, model: str | None = None, cache: ResponseCache | None = None) -> str:
    """Write a hand-made response for `request` into the cache (no server); returns its key.

    This is how replay caches for the demo/CI are built. `model` must be the model the replaying
    client will use (`request.model` or `cfg.llm.model`): it is part of the key. Completions may be
    strings (`<think>...</think>` is split out into `.reasoning`), dicts or `Completion`s. Recording
    an already-recorded key is a no-op. Without `cache=` it appends to `<cache_dir>/recorded.jsonl`
    (re-reading the cache each call); for many records open one
    `ResponseCache(cache_dir, shard_name="recorded.jsonl")` and pass it as `cache=`.
    """
    resolved = request.model or model
    if not resolved:
        raise ValueError("record(): the request has no model; pass model= (the replaying client's cfg.llm.model)")
    comps = [_as_completion(c) for c in completions]
    if not comps:
        raise ValueError("record(): at least one completion is needed")
    key = request_key(resolved, request.messages, request.params, request.template_version)
    params = canonical_params(request.params)
    for i, comp in enumerate(comps):
        prov = {"endpoint": "recorded", "model": resolved, "template_version": request.template_version,
                "params": params, "seed": params.get("seed"), "tokens": None, "latency_s": 0.0, "key": key, "index": i}
        comp.provenance = {**prov, **comp.provenance}
    own = cache is None
    target = cache if cache is not None else ResponseCache(cache_dir, shard_name="recorded.jsonl")
    try:
        target.put(key, model=resolved, messages=request.messages, params=request.params,
                   template_version=request.template_version, completions=comps)
    finally:
        if own:
            target.close()
    return key


def summarize(cache_dir: str | os.PathLike) -> dict[str, Any]:
    """What a cache holds: records per (template_version, model), shards, bytes, skipped lines."""
    cache = ResponseCache(cache_dir, readonly=True)
    per: dict[str, int] = {}
    completions = 0
    for key in cache.keys():
        entry = cache.get_entry(key) or {}
        label = f"{entry.get('template_version') or '<none>'} | {entry.get('model')}"
        per[label] = per.get(label, 0) + 1
        completions += len(entry.get("completions") or [])
    shards = sorted(cache.dir.glob("*.jsonl")) if cache.dir.exists() else []
    return {"cache_dir": str(cache.dir), "records": len(cache), "completions": completions,
            "shards": len(shards), "bytes": sum(p.stat().st_size for p in shards),
            "skipped_lines": cache.skipped_lines, "by_template_and_model": dict(sorted(per.items()))}

