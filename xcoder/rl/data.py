"""RL training data: validate our RLRow parquet, convert the released X-Coder-RL-40k files, and
write the `sandbox_fusion` view that stock verl's reward path grades.

Why: the trainer must never discover a broken ground truth at step 300 of a 7-day run, so every row
is decoded up front (`parse_ground_truth`) and a bad row fails here, naming the file and row.
Released files are ~2 GB each (~200 KB/row), so they are streamed in record batches, never loaded
whole (upstream loaded all parquet into pandas: paper-recipe §12.9).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from xcoder.records import RLRow, to_table, validate_table
from xcoder.rl.ground_truth import GroundTruthError, _loads_deep, parse_ground_truth

log = logging.getLogger(__name__)

# data_source values stock verl routes to `reward_score.sandbox_fusion` when reward.sandbox_fusion.url is set
SANDBOX_FUSION_SOURCES = ("codecontests", "apps", "codeforces", "taco")
RELEASED_DATA_SOURCE = "xcoder_rl40k"


class DataError(ValueError):
    """An RL data file cannot be used (names the file and the row)."""


# ---- our parquet ------------------------------------------------------------------------------
def iter_rl_tables(path: str | os.PathLike, batch_rows: int = 1024) -> Iterator[pa.Table]:
    """An RLRow parquet as validated tables of at most `batch_rows` rows (never the whole file)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file (expected a RLRow parquet file)")
    start = 0
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_rows):
        table = validate_table(pa.Table.from_batches([batch]), RLRow, source=f"{path} (rows {start}+)")
        start += table.num_rows
        yield table.select([f.name for f in RLRow.SCHEMA])


def validate_rl_file(path: str | os.PathLike) -> int:
    """Schema-check an RLRow parquet and decode every ground truth, streamed; return the row count."""
    rows = 0
    for table in iter_rl_tables(path):
        truths = table.column("reward_model").combine_chunks().field("ground_truth").to_pylist()
        for row, truth in enumerate(truths, start=rows):
            try:
                parse_ground_truth(truth)
            except GroundTruthError as exc:
                raise DataError(f"{path}: row {row}: reward_model.ground_truth: {exc}") from exc
        rows += table.num_rows
    return rows


def write_rl_view(files: Iterable[str | os.PathLike], out: str | os.PathLike,
                  views: Sequence[Callable[[pa.Table], pa.Table]]) -> int:
    """Stream RL files through row-wise `views` into one parquet (atomic), a batch at a time."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    n = 0
    with pq.ParquetWriter(tmp, RLRow.SCHEMA) as writer:
        for f in files:
            for table in iter_rl_tables(f):
                for view in views:
                    table = view(table)
                writer.write_table(table.cast(RLRow.SCHEMA))
                n += table.num_rows
    os.replace(tmp, out)
    return n


# ---- verl sandbox_fusion view -----------------------------------------------------------------
def sandbox_fusion_ground_truth(ground_truth: str) -> str:
    """Our ground truth -> verl `test_cases` JSON (`{"inputs","outputs"[,"fn_name"]}` or
    `{"assert_case": [...]}`), which `verl.utils.reward_score.sandbox_fusion` expects."""
    suite = parse_ground_truth(ground_truth)
    if suite.kind == "assert":
        return json.dumps({"assert_case": [t.code for t in suite.tests]}, ensure_ascii=False)
    data: dict[str, Any] = {"inputs": [t.input for t in suite.tests], "outputs": [t.output for t in suite.tests]}
    if suite.kind == "call":
        data["fn_name"] = suite.fn_name
    return json.dumps(data, ensure_ascii=False)


def sandbox_fusion_view(table: pa.Table, data_source: str) -> pa.Table:
    """Same rows with `data_source` in verl's sandbox_fusion set and verl-format ground truth.
    Our reward reads both formats, so this file also trains with `reward.backend=xcoder`."""
    if data_source not in SANDBOX_FUSION_SOURCES:
        raise ValueError(f"rl.data.sandbox_fusion_data_source must be one of {SANDBOX_FUSION_SOURCES}, got "
                         f"{data_source!r}")
    rows = table.to_pylist()
    for row in rows:
        row["data_source"] = data_source
        row["reward_model"] = {"style": "rule",
                               "ground_truth": sandbox_fusion_ground_truth(row["reward_model"]["ground_truth"])}
    return pa.Table.from_pylist(rows, schema=table.schema)


def system_prompt_view(table: pa.Table, system: str) -> pa.Table:
    """Same rows with `system` as the first chat message (rows that already have one keep theirs).
    Why: verl builds the prompt from the rows alone; a policy SFT-trained with a system message
    (the demo's) answers off-distribution without it (ms-swift gets it from `rl.swift.system`)."""
    rows = table.to_pylist()
    for row in rows:
        if not row["prompt"] or row["prompt"][0].get("role") != "system":
            row["prompt"] = [{"role": "system", "content": system}, *row["prompt"]]
    return pa.Table.from_pylist(rows, schema=table.schema)


# ---- released X-Coder-RL-40k ------------------------------------------------------------------
def _messages(value: Any, where: str) -> list[dict[str, str]]:
    value = _loads_deep(value, f"{where}: prompt")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not all(isinstance(m, dict) and "content" in m for m in value):
        raise DataError(f"{where}: prompt is not a chat message list")
    return [{"role": str(m.get("role") or "user"), "content": str(m["content"])} for m in value]


def released_ground_truth(row: dict[str, Any], where: str) -> tuple[dict[str, Any], str, str | None]:
    """(our ground-truth object, kind, fn_name) for one released row, following the branches of
    the upstream reward (paper-recipe §7): livecodebench -> selected_uts; leetcode -> asserts;
    else stdin/stdout `input_output`."""
    prompter = str(row.get("prompter_type") or "")
    try:
        if prompter == "livecodebench":
            io = _loads_deep(row.get("selected_uts"), "selected_uts")
            if isinstance(io, dict) and "input_output" in io:
                io = _loads_deep(io["input_output"], "selected_uts.input_output")
            if not isinstance(io, dict) or "inputs" not in io:
                raise DataError(f"{where}: selected_uts has no inputs/outputs")
            fn_name = io.get("fn_name") or None
            kind = "call" if fn_name else "stdio"
            tests = [{"input": i if isinstance(i, str) else "\n".join(json.dumps(a) for a in i),
                      "output": o if isinstance(o, str) else json.dumps(o)}
                     for i, o in zip(io["inputs"], io["outputs"], strict=True)]
            return {"kind": kind, "fn_name": fn_name, "tests": tests}, kind, fn_name
        io = _loads_deep(row.get("input_output"), "input_output")
        if prompter == "leetcode" or (isinstance(io, dict) and "test_cases" in io):
            cases = _loads_deep(io.get("test_cases") if isinstance(io, dict) else io, "test_cases")
            if isinstance(cases, str):
                cases = [cases]
            if not isinstance(cases, list) or not cases:
                raise DataError(f"{where}: leetcode input_output has no test_cases list")
            return {"kind": "assert", "fn_name": None, "tests": [{"code": str(c)} for c in cases]}, "assert", None
        if not isinstance(io, dict) or "inputs" not in io or "outputs" not in io:
            raise DataError(f"{where}: input_output has no inputs/outputs")
        tests = [{"input": i if isinstance(i, str) else json.dumps(i),
                  "output": o if isinstance(o, str) else json.dumps(o)}
                 for i, o in zip(io["inputs"], io["outputs"], strict=True)]
        return {"kind": "stdio", "fn_name": None, "tests": tests}, "stdio", None
    except (GroundTruthError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{where}: {exc}") from exc


def convert_released_row(row: dict[str, Any], index: int, where: str) -> RLRow:
    truth, kind, fn_name = released_ground_truth(row, where)
    parse_ground_truth(json.dumps(truth))  # fail here, not in the trainer
    style = {"leetcode": "leetcode"}.get(str(row.get("prompter_type") or ""), "released")
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    pass_rate = extra.get("pass_rate") if isinstance(extra.get("pass_rate"), (int, float)) else None
    task_id = row.get("id")
    if task_id in (None, ""):
        raise DataError(f"{where}: row without id")
    return RLRow(
        data_source=RELEASED_DATA_SOURCE,
        prompt=_messages(row.get("prompt"), where),
        ability="code",
        reward_model={"style": "rule", "ground_truth": json.dumps(truth, ensure_ascii=False)},
        extra_info={"task_id": str(task_id), "index": index, "style": style, "kind": kind, "fn_name": fn_name,
                    "pass_rate": None if pass_rate is None else float(pass_rate), "difficulty": None},
    )


def iter_released_rows(path: str | os.PathLike, limit: int | None = None,
                       batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """Stream rows of one released parquet file (record batches; never the whole file)."""
    pf = pq.ParquetFile(path, pre_buffer=False)  # stream: pre-buffering reads far ahead
    seen = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield row


def resolve_released_file(repo: str, filename: str, revision: str | None = None) -> Path:
    """A local repo directory, or a hub dataset id downloaded through huggingface_hub."""
    local = Path(repo).expanduser()
    if local.is_dir():
        path = local / filename
        if not path.exists():
            raise FileNotFoundError(f"{path}: released RL file not found in local dir {local}")
        return path
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=repo, filename=filename, repo_type="dataset", revision=revision))


def convert_released(files: Sequence[str | os.PathLike], out_path: str | os.PathLike, *, limit: int | None = None,
                     chunk_rows: int = 2048) -> dict[str, int]:
    """Convert released files into one RLRow parquet, streaming; keeps file and row order (the
    pass-rate order, for curricula). Returns counts per file."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    counts: dict[str, int] = {}
    seen_ids: set[str] = set()
    index = 0
    writer = pq.ParquetWriter(tmp, RLRow.SCHEMA)
    try:
        for f in files:
            buf: list[RLRow] = []
            n = 0
            for i, raw in enumerate(iter_released_rows(f, limit)):
                row = convert_released_row(raw, index, f"{f}: row {i}")
                tid = row.extra_info["task_id"]
                if tid in seen_ids:
                    raise DataError(f"{f}: row {i}: duplicate id {tid!r} across released files")
                seen_ids.add(tid)
                buf.append(row)
                index += 1
                n += 1
                if len(buf) >= chunk_rows:
                    writer.write_table(to_table(buf, RLRow))
                    buf = []
            if buf:
                writer.write_table(to_table(buf, RLRow))
            counts[str(f)] = n
            log.info("converted %d rows from %s", n, f)
        writer.close()
        for _ in iter_rl_tables(tmp):  # validated a batch at a time
            pass
        os.replace(tmp, out_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return counts
