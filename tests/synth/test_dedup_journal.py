"""Dedup/decontamination helpers and the resumable journal."""

from __future__ import annotations

import gzip
import json

import pytest

from xcoder.synth.common import Journal
from xcoder.synth.dedup import NgramIndex, code_fingerprint, load_benchmark_statements, near_duplicates

BASE = "Given an array of n integers, find the maximum sum of a contiguous subarray and print it on one line"


def test_minhash_flags_near_duplicate_statements_only():
    texts = [BASE, BASE + " please",
             "Count the number of distinct paths in a grid with obstacles from corner to corner"]
    assert near_duplicates(texts, threshold=0.7, num_perm=128, shingle=3) == [1]


def test_code_fingerprint_ignores_comments_and_formatting():
    assert code_fingerprint("x = 1  # one\nprint(x)\n") == code_fingerprint("x=1\n\nprint( x )")
    assert code_fingerprint("print(1)") != code_fingerprint("print(2)")


def test_benchmark_loader_and_ngram_hits(tmp_path):
    path = tmp_path / "lcb.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps({"question_content": BASE}) + "\n")
    index = NgramIndex(load_benchmark_statements(path), 8)
    assert index.hits("Story. " + BASE) > 0 and index.hits("something else entirely") == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(ValueError, match="no statement field"):
        load_benchmark_statements(bad)
    with pytest.raises(FileNotFoundError):
        load_benchmark_statements(tmp_path / "missing.jsonl")


def test_journal_survives_a_torn_last_line(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    j.add("a", [{"x": 1}], {"r": 1})
    with open(tmp_path / "j.jsonl", "a") as fh:
        fh.write('{"key": "b", "records": [')  # killed mid-write
    j2 = Journal(tmp_path / "j.jsonl")
    assert "a" in j2 and "b" not in j2
    j2.add("b", [], {})
    assert set(k for k in ("a", "b") if k in Journal(tmp_path / "j.jsonl")) == {"a", "b"}
