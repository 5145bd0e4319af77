"""Near-duplicate tasks (MinHash LSH on statements), exact duplicate solutions, and n-gram
decontamination against benchmark problems (LiveCodeBench-format JSONL files from the config)."""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def shingles(text: str, n: int) -> set[str]:
    w = words(text)
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


class NearDuplicateIndex:
    """MinHash LSH over statements, streamed: `is_new(text)` answers "no earlier kept text shares a
    band with it" and, if so, remembers it. Same banding as datasketch's `MinHashLSH` (its optimal
    b x r for the threshold) and the same answer as its `query`, but each text costs b 64-bit band
    keys (no MinHash objects, no key strings are kept): about 0.5 KB a text at num_perm=128, so a
    200k-task run needs ~100 MB, and the work per text is constant (no pairwise comparison)."""

    def __init__(self, *, threshold: float, num_perm: int, shingle: int, seed: int = 1) -> None:
        from datasketch.lsh import _optimal_param

        self.num_perm, self.shingle, self.seed = num_perm, shingle, seed
        self.bands, self.rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
        self._tables: list[set[int]] = [set() for _ in range(self.bands)]

    def _band_keys(self, text: str) -> list[int]:
        from datasketch import MinHash

        mh = MinHash(num_perm=self.num_perm, seed=self.seed)
        for s in shingles(text, self.shingle):
            mh.update(s.encode("utf-8"))
        hv = mh.hashvalues
        r = self.rows
        return [int.from_bytes(hashlib.blake2b(hv[i * r:(i + 1) * r].tobytes(), digest_size=8).digest(), "little")
                for i in range(self.bands)]

    def is_new(self, text: str) -> bool:
        keys = self._band_keys(text)
        if any(k in table for k, table in zip(keys, self._tables)):
            return False
        for k, table in zip(keys, self._tables):
            table.add(k)
        return True


def near_duplicates(texts: Sequence[str], *, threshold: float, num_perm: int, shingle: int, seed: int = 1) -> list[int]:
    """Indices of texts that near-duplicate an EARLIER text (first occurrence kept), by MinHash LSH."""
    index = NearDuplicateIndex(threshold=threshold, num_perm=num_perm, shingle=shingle, seed=seed)
    return [i for i, text in enumerate(texts) if not index.is_new(text)]


def code_fingerprint(code: str) -> str:
    """Exact-duplicate key of a solution: its AST unparsed (comments and formatting do not count)."""
    try:
        canon = ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError):
        canon = "\n".join(line.rstrip() for line in code.strip().splitlines())
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


_STATEMENT_FIELDS = ("question_content", "problem_description", "question", "description", "prompt")


def load_benchmark_statements(path: str | Path) -> list[str]:
    """Problem statements from a JSONL(.gz) benchmark file (LCB `question_content`, or a few other
    common field names). A file without any recognised field is an error, not an empty benchmark."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"decontamination benchmark file {path} does not exist (synth.dedup.benchmarks)")
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            text = next((row[f] for f in _STATEMENT_FIELDS if isinstance(row.get(f), str)), None)
            if text is None:
                raise ValueError(f"{path}:{lineno}: no statement field (looked for {', '.join(_STATEMENT_FIELDS)})")
            out.append(text)
    return out


class NgramIndex:
    """Set of word n-grams of benchmark statements; a task overlapping in >= min_hits n-grams is contaminated."""

    def __init__(self, statements: Iterable[str], n: int) -> None:
        self.n = n
        self.grams: set[str] = set()
        self.docs = 0
        for s in statements:
            self.grams |= shingles(s, n)
            self.docs += 1

    def hits(self, text: str) -> int:
        return len(shingles(text, self.n) & self.grams)
