"""LiveCodeBench `code_generation_lite`: release tags, hub/local loading, private-test decoding and
the one-time JSON conversion.

LCB ships private tests as base64(zlib(pickle(json_text))). Unpickling is code execution, so this
module decodes pickled tests only when the caller passes `trust_pickle=True` (the official hub files,
or our own shipped sample), and even then through an unpickler that refuses every global (a pickle
of a plain `str` needs none; a tampered file fails instead of running code). `convert_to_json`
writes a copy whose private tests are plain JSON, which later runs read without any pickle.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import os
import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xcoder.eval.problems import EvalTest, Problem, check_unique_ids

log = logging.getLogger(__name__)

HUB_REPO = "livecodebench/code_generation_lite"
_FILES = ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl"]
_VERSIONS = [f"v{i}" for i in range(1, len(_FILES) + 1)]


def release_files(tag: str) -> list[str]:
    """Files of a `version_tag` as LCB's loader script defines them: `release_vN` = test..testN
    (cumulative), `release_latest` = all, `vN` = the single file of that release, `vA_vB` = A..B."""
    if tag == "release_latest":
        return list(_FILES)
    if tag.startswith("release_v") and tag[len("release_"):] in _VERSIONS:
        return _FILES[: _VERSIONS.index(tag[len("release_"):]) + 1]
    if tag in _VERSIONS:
        return [_FILES[_VERSIONS.index(tag)]]
    parts = tag.split("_")
    if len(parts) == 2 and all(p in _VERSIONS for p in parts):
        a, b = (_VERSIONS.index(p) for p in parts)
        if a < b:
            return _FILES[a : b + 1]
    raise ValueError(
        f"unknown LiveCodeBench version tag {tag!r}: use release_v1..release_v{len(_FILES)}, release_latest, "
        f"v1..v{len(_FILES)} or a range like v4_v6"
    )


# LCB problems whose grading is known to be wrong [judge-semantics §4 errata]. Kept in the score (as
# LCB does) but flagged in the per-problem log and counted per window, so a reader can discount them.
KNOWN_ISSUES: dict[str, str] = {
    **{qid: "several valid outputs, graded against one" for qid in (
        "abc311_c", "abc326_d", "abc327_b", "abc333_e", "abc343_e", "abc362_c", "abc343_a", "arc185_c",
        "find-words-containing-character", "find-the-peaks", "generate-binary-strings-without-adjacent-zeros")},
    **{qid: "interactive problem" for qid in ("abc337_e", "abc355_e")},
    **{qid: "erroneous tests" for qid in ("abc350_c", "apply-operations-to-make-string-empty", "most-frequent-ids",
                                          "arc189_a")},
}


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def known_issue(problem_id: str, title: str) -> str | None:
    """The errata reason for an LCB problem (matched by id, or by LeetCode title slug), else None."""
    return KNOWN_ISSUES.get(problem_id) or KNOWN_ISSUES.get(_slug(title))


class PickleRefused(ValueError):
    """Private tests are pickled and the caller did not opt in to unpickling them."""


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any class/function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in LCB private tests")


def decode_private_tests(blob: str, *, trust_pickle: bool, where: str = "") -> list[dict[str, Any]]:
    """LCB's rule: try plain JSON first, else base64 -> zlib -> pickle -> JSON text."""
    try:
        value = json.loads(blob)
        if isinstance(value, list):
            return value
    except ValueError:
        pass
    if not trust_pickle:
        raise PickleRefused(
            f"{where}: private tests are pickled (base64/zlib/pickle). Unpickling runs code: pass "
            "eval.benchmark.trust_pickle=true only for a trusted source (the official hub files), or "
            "convert once with `python -m xcoder.eval.convert SRC DST --trust-pickle` and load DST."
        )
    try:
        raw = zlib.decompress(base64.b64decode(blob.encode("utf-8")))
        text = _NoGlobalsUnpickler(io.BytesIO(raw)).load()
        value = json.loads(text)
    except Exception as exc:  # corrupt base64/zlib/pickle/JSON all mean the same: unreadable row
        raise ValueError(f"{where}: cannot decode private tests: {exc}") from exc
    if not isinstance(value, list):
        raise ValueError(f"{where}: private tests decode to {type(value).__name__}, expected a list")
    return value


def encode_private_tests(tests: list[dict[str, Any]]) -> str:
    """LCB's encoding (used to write our shipped sample in the real schema)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode("utf-8")


def parse_contest_date(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError as exc:
        raise ValueError(f"{where}: bad contest_date {value!r}") from exc


def _tests(raw: list[dict[str, Any]], call: bool, where: str) -> list[EvalTest]:
    out = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise ValueError(f"{where}: test {i} lacks input/output: {str(t)[:120]}")
        want = "functional" if call else "stdin"
        if t.get("testtype", want) != want:
            raise ValueError(f"{where}: test {i} has testtype {t.get('testtype')!r}, expected {want!r}")
        out.append(EvalTest(input=str(t["input"]), output=str(t["output"])))
    return out


def row_to_problem(row: dict[str, Any], *, trust_pickle: bool, where: str) -> Problem:
    """One LCB row (the real schema) -> Problem."""
    for key in ("question_id", "question_content", "platform", "contest_date", "difficulty",
                "public_test_cases", "private_test_cases"):
        if key not in row:
            raise ValueError(f"{where}: missing LiveCodeBench field {key!r}")
    qid = str(row["question_id"])
    where = f"{where} ({qid})"
    meta = row.get("metadata") or "{}"
    meta = json.loads(meta) if isinstance(meta, str) else dict(meta)
    fn_name = meta.get("func_name")
    public = row["public_test_cases"]
    public = json.loads(public) if isinstance(public, str) else list(public)
    private = row["private_test_cases"]
    private = decode_private_tests(private, trust_pickle=trust_pickle,
                                   where=where) if isinstance(private, str) else list(private)
    call = bool(fn_name)
    return Problem(
        problem_id=qid,
        benchmark="livecodebench",
        title=str(row.get("question_title", "")),
        statement=str(row["question_content"]),
        kind="call" if call else "stdio",
        public_tests=_tests(public, call, where),
        private_tests=_tests(private, call, where),
        starter_code=str(row.get("starter_code") or ""),
        fn_name=fn_name,
        difficulty=str(row["difficulty"]).lower(),
        platform=str(row["platform"]).lower(),
        contest_date=parse_contest_date(row["contest_date"], where),
        metadata={"contest_id": row.get("contest_id"), **{k: v for k, v in meta.items() if k != "func_name"},
                  **({"known_issue": issue} if (issue := known_issue(qid,
                                                                     str(row.get("question_title", "")))) else {})},
    )


def iter_rows(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """Rows of a local LCB JSONL or parquet file, each with a `file:line` location."""
    if not path.exists():
        raise FileNotFoundError(f"LiveCodeBench file not found: {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield row, f"{path}:row {i}"
        return
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"{path}:{i}"
            except ValueError as exc:
                raise ValueError(f"{path}:{i}: not a JSON line: {exc}") from exc


def hub_files(tag: str, *, revision: str = "main", repo_id: str = HUB_REPO) -> list[Path]:
    """Download (or find in the HF cache) the JSONL files of a version tag. `datasets>=4` refuses
    LCB's loader script, so the files are fetched directly."""
    from huggingface_hub import hf_hub_download

    return [Path(hf_hub_download(repo_id=repo_id, filename=name, repo_type="dataset", revision=revision))
            for name in release_files(tag)]


def load_problems(paths: list[Path], *, trust_pickle: bool, start: dt.datetime | None = None,
                  end: dt.datetime | None = None) -> list[Problem]:
    """Problems of LCB files, optionally only those with start <= contest_date <= end (checked
    before decoding, so rows outside the window never touch pickle)."""
    problems = []
    for path in paths:
        for row, where in iter_rows(path):
            if start is not None or end is not None:
                date = parse_contest_date(row.get("contest_date"), where)
                if (start and date < start) or (end and date > end):
                    continue
            problems.append(row_to_problem(row, trust_pickle=trust_pickle, where=where))
    check_unique_ids(problems, ", ".join(map(str, paths)))
    return problems


def source_digest(paths: list[Path]) -> str:
    """Identity of the source files (path, size, mtime) for naming the converted copy."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def convert_to_json(paths: list[Path], dest: Path, *, trust_pickle: bool, start: dt.datetime | None = None,
                    end: dt.datetime | None = None) -> int:
    """Write one JSONL in the LCB schema whose `private_test_cases` are plain JSON text (LCB's own
    loader reads that too), keeping rows with start <= contest_date <= end. Atomic: written to a
    temp file and renamed. Returns the row count."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for path in paths:
                for row, where in iter_rows(path):
                    date = parse_contest_date(row.get("contest_date"), where)
                    if (start and date < start) or (end and date > end):
                        continue
                    private = row.get("private_test_cases")
                    if isinstance(private, str):
                        row = dict(row, private_test_cases=json.dumps(
                            decode_private_tests(private, trust_pickle=trust_pickle, where=where)))
                    out.write(json.dumps(row, default=str) + "\n")
                    count += 1
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("converted %d LiveCodeBench rows to %s (private tests as plain JSON)", count, dest)
    return count
