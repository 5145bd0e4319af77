"""Shared plumbing for the synthesis stages: stable ids, drop accounting and the resumable journal.

Every stage processes *units* (a subtree, a task) keyed by a hash of what they were built from.
Finished units are appended to a journal (one JSON line each, flushed and fsync'd), so a killed run
keeps everything it finished and a rerun skips it. Stages stream (`stream_units`): they read their
input a window at a time and write their parquet as they go, from the journal and in input order, so
memory does not grow with the run and the output does not depend on where an earlier run stopped
(the parquet is renamed into place when complete). Drops are never silent: each carries a reason that ends up in
the data card.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def stable_hash(*parts: Any, n: int = 16) -> str:
    """sha256 over the canonical JSON of `parts`, truncated: the key of a unit of work."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


class DropCounter:
    """Counts kept items and drops by reason for one stage (merged into the manifest/data card)."""

    def __init__(self) -> None:
        self.reasons: collections.Counter[str] = collections.Counter()
        self.kept = 0

    def drop(self, reason: str, what: str = "") -> None:
        self.reasons[reason] += 1
        if what:
            log.debug("dropped %s: %s", what, reason)

    def merge(self, reasons: dict[str, int], kept: int = 0) -> None:
        self.reasons.update(reasons)
        self.kept += kept

    def as_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped": sum(self.reasons.values()),
                "drop_reasons": dict(sorted(self.reasons.items()))}


class Journal:
    """Append-only JSONL of finished units: `{"key": ..., "records": [...], "drops": {...}, ...}`.

    A line is written only when its unit is completely done, then flushed and fsync'd; a torn
    last line (the process died mid-write) is ignored on read, so resuming is always safe. Only an
    index (key -> byte offset of its line) stays in memory; an entry's records are read back from
    disk when asked for, so a journal of a paper-scale run costs a few bytes per unit, not its data.
    """

    _KEY = re.compile(rb'^\{"key": "((?:[^"\\]|\\.)*)"')

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._offsets: dict[str, int] = {}
        self._reader: Any = None
        if self.path.exists():
            self._index()

    def _index(self) -> None:
        offset = 0
        with open(self.path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                start, offset = offset, offset + len(line)
                if not line.endswith(b"\n"):
                    log.warning("%s: ignoring torn last line %d (interrupted write)", self.path, lineno)
                    break
                m = self._KEY.match(line)
                if m is None:  # written by hand or by an older layout: parse it whole
                    try:
                        entry = json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        log.warning("%s: ignoring unreadable line %d", self.path, lineno)
                        continue
                    if not (isinstance(entry, dict) and "key" in entry):
                        continue
                    key = str(entry["key"])
                else:
                    key = json.loads(b'"' + m.group(1) + b'"')
                self._offsets[key] = start  # a unit journaled twice: the last line wins

    def __contains__(self, key: str) -> bool:
        return key in self._offsets

    def __len__(self) -> int:
        return len(self._offsets)

    def get(self, key: str) -> dict[str, Any] | None:
        offset = self._offsets.get(key)
        if offset is None:
            return None
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115 - kept open for the journal's life
        self._reader.seek(offset)
        line = self._reader.readline()
        try:
            return json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: the line of unit {key} at byte {offset} is unreadable ({exc}); "
                             "delete the journal to redo this stage") from exc

    def add(self, key: str, records: list[dict[str, Any]], drops: dict[str, int] | None = None, **extra: Any) -> None:
        entry = {"key": key, "records": records, "drops": drops or {}, **extra}
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        size = self.path.stat().st_size if self.path.exists() else 0
        # A previous run may have died mid-line: start on a fresh line so both stay readable.
        if size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
                    size += 1
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._offsets[key] = size

    def entries(self, keys: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The journal entries of `keys`, in that order, read lazily (keys not done are skipped)."""
        for k in keys:
            entry = self.get(k)
            if entry is not None:
                yield entry

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def stream_units(units: Iterable[tuple[str, Any]], journal: Journal, *, window: int,
                 process: Callable[[list[tuple[str, Any]]], None],
                 emit: Callable[[dict[str, Any]], None],
                 label: tuple[str, str] = ("synth", "units")) -> tuple[int, int]:
    """Walk `(key, item)` units in order, `window` at a time: `process` gets the window's units that
    the journal does not hold yet (it journals what it finishes); then `emit` gets the journal entry
    of each of the window's finished units, in unit order. Memory is bounded by one window whatever
    the number of units, and the emitted order (hence the stage's output) does not depend on where an
    earlier run stopped. Logs `<stage>: N <units>, R already done, T to do` (label = (stage, units)).
    Returns (units seen, units found already done)."""
    seen = resumed = 0
    pending: list[tuple[str, Any]] = []

    def flush() -> None:
        nonlocal resumed
        todo = [u for u in pending if u[0] not in journal]
        resumed += len(pending) - len(todo)
        if todo:
            process(todo)
        for entry in journal.entries(k for k, _ in pending):
            emit(entry)
        pending.clear()

    for unit in units:
        seen += 1
        pending.append(unit)
        if len(pending) >= window:
            flush()
    if pending:
        flush()
    stage, what = label
    log.info("%s: %d %s, %d already done, %d to do", stage, seen, what, resumed, seen - resumed)
    return seen, resumed


class GroupedReader:
    """Rows of a parquet file grouped by a key column, taken in the order of another stream (a
    merge-join). The synthesis stages write solutions and tests in task order, so each `take(key)`
    reads just that task's rows; rows that come early are held until asked for (a file in another
    order still works, at the cost of holding what is read ahead; a warning says when that grows)."""

    def __init__(self, rows: Iterator[Any], key: Callable[[Any], str]) -> None:
        self._rows = rows
        self._key = key
        self._ahead: dict[str, list[Any]] = {}
        self._peek: Any = None
        self._warned = False

    def take(self, key: str) -> list[Any]:
        if key in self._ahead:
            return self._ahead.pop(key)
        while True:
            row = self._peek if self._peek is not None else next(self._rows, None)
            self._peek = None
            if row is None:
                return []
            k = self._key(row)
            if k == key:
                group = [row]
                for nxt in self._rows:
                    if self._key(nxt) != key:
                        self._peek = nxt
                        break
                    group.append(nxt)
                return group
            self._ahead.setdefault(k, []).append(row)
            if len(self._ahead) > 10_000 and not self._warned:
                self._warned = True
                log.warning("rows are not in the order they are asked for: holding %d groups in memory",
                            len(self._ahead))


def chunked(items: list[Any], size: int) -> Iterator[list[Any]]:
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start : start + size]
