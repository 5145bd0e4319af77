"""Typed records for every file that passes between stages, with declared parquet schemas.

Stages talk only through these files. Writers build a table from dataclass rows; readers validate
the file against the declared schema on read and name the file, column and row on a mismatch, so a
broken or stale hand-off fails at the boundary instead of three stages later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

STYLES = ("codeforces", "atcoder", "leetcode")
TEST_KINDS = ("stdio", "call", "assert")
TEST_SOURCES = ("sample", "prompted", "generator", "mutated")
TEST_TAGS = ("plain", "small", "edge", "stress")
VERIFY_STATUSES = ("kept", "rejected")

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])


class SchemaError(ValueError):
    """A file does not match the schema its reader expects."""


class Record:
    """Base for stage records: a dataclass plus its declared pyarrow schema.

    `SCHEMA` is the contract. `ENUMS` restricts string columns to known values. Columns whose
    nested shape is free-form (feature trees, vote tables) are stored as JSON strings and named in
    `JSON_COLUMNS` so the reader checks that they parse.
    """

    SCHEMA: ClassVar[pa.Schema]
    ENUMS: ClassVar[dict[str, Sequence[str]]] = {}
    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ()

    def to_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


R = TypeVar("R", bound=Record)


@dataclasses.dataclass
class FeatureSubtree(Record):
    """One sampled feature subtree: the seed of one task (upstream `feature_all.jsonl` layout)."""

    idx: int
    features: str  # JSON: category -> subcategory -> ... -> list[str] leaves
    leaf_count: int
    mandatory_features: list[str] = dataclasses.field(default_factory=list)
    sampler: str = "{}"  # JSON: sampler parameters and seed that produced it

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("idx", pa.int64(), nullable=False),
            pa.field("features", pa.string(), nullable=False),
            pa.field("leaf_count", pa.int32(), nullable=False),
            pa.field("mandatory_features", pa.list_(pa.string()), nullable=False),
            pa.field("sampler", pa.string(), nullable=False),
        ]
    )
    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ("features", "sampler")


@dataclasses.dataclass
class Task(Record):
    """A synthesised problem statement (stage 2 output) with the stage-1 analysis that shaped it."""

    task_id: str
    subtree_idx: int
    style: str
    question: str
    stage1: str  # JSON: feature_roles_tree, selected_features_tree, integration_strategy
    fn_name: str | None = None  # leetcode style: the method the tests call
    starter_code: str | None = None
    provenance: str = "{}"  # JSON: model, endpoint, template hash, params

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("subtree_idx", pa.int64(), nullable=False),
            pa.field("style", pa.string(), nullable=False),
            pa.field("question", pa.string(), nullable=False),
            pa.field("stage1", pa.string(), nullable=False),
            pa.field("fn_name", pa.string(), nullable=True),
            pa.field("starter_code", pa.string(), nullable=True),
            pa.field("provenance", pa.string(), nullable=False),
        ]
    )
    ENUMS: ClassVar[dict[str, Sequence[str]]] = {"style": STYLES}
    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ("stage1", "provenance")


@dataclasses.dataclass
class Solution(Record):
    """One candidate solution sampled from a teacher: full response, reasoning, final code."""

    solution_id: str
    task_id: str
    teacher: str
    response: str  # the whole assistant answer (after reasoning)
    reasoning: str  # reasoning_content or the <think> block; "" when the model gave none
    code: str  # the last fenced code block of the final answer
    language: str = "python"
    num_tokens: int = 0  # tokens of reasoning + response, with the teacher's tokenizer when known
    provenance: str = "{}"

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("solution_id", pa.string(), nullable=False),
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("teacher", pa.string(), nullable=False),
            pa.field("response", pa.string(), nullable=False),
            pa.field("reasoning", pa.string(), nullable=False),
            pa.field("code", pa.string(), nullable=False),
            pa.field("language", pa.string(), nullable=False),
            pa.field("num_tokens", pa.int64(), nullable=False),
            pa.field("provenance", pa.string(), nullable=False),
        ]
    )
    ENUMS: ClassVar[dict[str, Sequence[str]]] = {"language": ("python", "cpp")}
    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ("provenance",)


@dataclasses.dataclass
class TestInput(Record):
    """One generated test input (no expected output yet: dual verification labels it)."""

    __test__: ClassVar[bool] = False  # not a pytest class

    test_id: str
    task_id: str
    input: str  # stdin text, or one JSON value per line for call-based tasks
    source: str  # sample | prompted | generator | mutated
    tag: str = "plain"  # plain | small | edge | stress: drives the test weight
    generator: str | None = None  # JSON: generator id, seed, scale parameters
    expected: str | None = None  # a known output (statement sample, imported truth): anchors the vote

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("test_id", pa.string(), nullable=False),
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("input", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("tag", pa.string(), nullable=False),
            pa.field("generator", pa.string(), nullable=True),
            pa.field("expected", pa.string(), nullable=True),
        ]
    )
    ENUMS: ClassVar[dict[str, Sequence[str]]] = {"source": TEST_SOURCES, "tag": TEST_TAGS}


@dataclasses.dataclass
class Verification(Record):
    """Dual-verification outcome for one task: labelled tests, votes, golden solution, reasons."""

    task_id: str
    status: str  # kept | rejected
    reason: str  # "" when kept; the first failing filter otherwise
    kind: str  # stdio | call
    tests: str  # JSON list of {input, output, weight, tag, agreement}
    golden_solution_id: str | None = None
    golden_select_score: float = 0.0  # weighted pass rate on the selection half
    golden_holdout_pass: float = 0.0  # weighted pass rate on the hold-out half
    votes: str = "[]"  # JSON: per test vote counts, support, has_tie
    pass_matrix: str = "{}"  # JSON: solution_id -> list[bool] over voted tests
    evidence: str = "{}"  # JSON: why to trust a kept task (cluster sizes, agreement, samples, est. precision)

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("tests", pa.string(), nullable=False),
            pa.field("golden_solution_id", pa.string(), nullable=True),
            pa.field("golden_select_score", pa.float64(), nullable=False),
            pa.field("golden_holdout_pass", pa.float64(), nullable=False),
            pa.field("votes", pa.string(), nullable=False),
            pa.field("pass_matrix", pa.string(), nullable=False),
            pa.field("evidence", pa.string(), nullable=False),
        ]
    )
    ENUMS: ClassVar[dict[str, Sequence[str]]] = {"status": VERIFY_STATUSES, "kind": TEST_KINDS}
    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ("tests", "votes", "pass_matrix", "evidence")


@dataclasses.dataclass
class SFTRow(Record):
    """One SFT example. `messages` is what we train on; `query`/`response` mirror the released
    X-Coder-SFT-376k layout so ms-swift and existing converters read it unchanged."""

    id: str
    task_id: str
    messages: list[dict[str, str]]  # system?/user/assistant; assistant keeps <think>…</think> + answer
    query: str
    response: str
    style: str
    teacher: str
    features: str = "{}"  # JSON of the selected feature tree
    num_tokens: int = 0

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("messages", pa.list_(_MESSAGE), nullable=False),
            pa.field("query", pa.string(), nullable=False),
            pa.field("response", pa.string(), nullable=False),
            pa.field("style", pa.string(), nullable=False),
            pa.field("teacher", pa.string(), nullable=False),
            pa.field("features", pa.string(), nullable=False),
            pa.field("num_tokens", pa.int64(), nullable=False),
        ]
    )
    ENUMS: ClassVar[dict[str, Sequence[str]]] = {"style": STYLES + ("released",)}
    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ("features",)


_RL_EXTRA = pa.struct(
    [
        ("task_id", pa.string()),
        ("index", pa.int64()),
        ("style", pa.string()),
        ("kind", pa.string()),  # stdio | call | assert
        ("fn_name", pa.string()),
        ("pass_rate", pa.float64()),  # golden/teacher pass rate, for curricula
        ("difficulty", pa.string()),  # bucket name derived from pass_rate
        ("confidence", pa.float64()),  # verification's estimated precision of the labels (null: none)
        ("verification", pa.string()),  # JSON: the verification evidence (cluster sizes, agreement, samples)
    ]
)


@dataclasses.dataclass
class RLRow(Record):
    """One RL prompt in verl's dataset schema. `reward_model.ground_truth` is the test suite as a
    JSON string `{"kind", "fn_name", "tests": [{"input", "output", "weight"}]}` (or LeetCode
    `{"kind": "assert", "tests": [{"code"}]}`); `extra_info` carries what the reward needs."""

    data_source: str
    prompt: list[dict[str, str]]
    ability: str
    reward_model: dict[str, str]  # {"style": "rule", "ground_truth": <json>}
    extra_info: dict[str, Any]

    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("data_source", pa.string(), nullable=False),
            pa.field("prompt", pa.list_(_MESSAGE), nullable=False),
            pa.field("ability", pa.string(), nullable=False),
            pa.field(
                "reward_model",
                pa.struct([("style", pa.string()), ("ground_truth", pa.string())]),
                nullable=False,
            ),
            pa.field("extra_info", _RL_EXTRA, nullable=False),
        ]
    )


RECORD_TYPES: dict[str, type[Record]] = {
    "feature_subtree": FeatureSubtree,
    "task": Task,
    "solution": Solution,
    "test_input": TestInput,
    "verification": Verification,
    "sft": SFTRow,
    "rl": RLRow,
}


def to_table(rows: Iterable[R], record_type: type[R]) -> pa.Table:
    """Build a schema-conforming table from records (raises with the offending column)."""
    data = [r.to_row() for r in rows]
    columns = {}
    for field in record_type.SCHEMA:
        values = [row[field.name] for row in data]
        try:
            columns[field.name] = pa.array(values, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"{record_type.__name__}: column {field.name!r}: {exc}") from exc
    return pa.Table.from_pydict(columns, schema=record_type.SCHEMA)


def write_records(path: str | os.PathLike, rows: Iterable[R], record_type: type[R]) -> Path:
    """Write records atomically (temp file + rename) so a killed run never leaves half a file."""
    table = to_table(rows, record_type)
    validate_table(table, record_type, source="<in-memory>")
    return write_table_atomic(table, path)


def write_table_atomic(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write a parquet file via temp file + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_table(path: str | os.PathLike, record_type: type[Record]) -> pa.Table:
    """Read a parquet file and validate it against `record_type`'s declared schema."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected a {record_type.__name__} parquet file)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"{path}: not a readable parquet file: {exc}") from exc
    return validate_table(table, record_type, source=str(path))


def read_records(path: str | os.PathLike, record_type: type[R]) -> list[R]:
    """Read and validate a parquet file into a list of records."""
    table = read_table(path, record_type)
    return _table_records(table, record_type)


def _table_records(table: pa.Table, record_type: type[R]) -> list[R]:
    names = [f.name for f in dataclasses.fields(record_type)]  # type: ignore[arg-type]
    return [record_type(**{k: row[k] for k in names if k in row}) for row in table.to_pylist()]


def iter_record_batches(path: str | os.PathLike, record_type: type[R], batch_rows: int = 1024) -> Iterator[list[R]]:
    """Stream a parquet file as validated lists of at most `batch_rows` records: memory stays
    bounded by one batch (plus one row group of pyarrow's read buffer), whatever the file's size."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected a {record_type.__name__} parquet file)")
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering reads far ahead: memory grows with the file
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"{path}: not a readable parquet file: {exc}") from exc
    start = 0
    for batch in pf.iter_batches(batch_size=max(1, int(batch_rows))):
        table = validate_table(pa.Table.from_batches([batch]), record_type, source=f"{path} (rows {start}+)")
        start += table.num_rows
        yield _table_records(table, record_type)


def count_rows(path: str | os.PathLike) -> int:
    """Rows of a parquet file, from its footer (nothing is read); 0 if the file does not exist yet."""
    path = Path(path)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def iter_records(path: str | os.PathLike, record_type: type[R], batch_rows: int = 1024) -> Iterator[R]:
    """Stream a parquet file record by record (see `iter_record_batches`)."""
    for batch in iter_record_batches(path, record_type, batch_rows):
        yield from batch


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RecordWriter:
    """Write records to a parquet file as they come, one row group per `row_group_rows` records, to a
    temp file renamed into place on `close()`: memory is bounded by one row group, and readers never
    see half a file (a killed run leaves the previous file, if any, untouched). Use as a context
    manager: an exception discards the temp file. `keep_identical`: an existing file with the same
    bytes is left untouched (same mtime), so downstream stages keyed on it see nothing new;
    `changed` says whether the file was replaced."""

    def __init__(self, path: str | os.PathLike, record_type: type[R], row_group_rows: int = 1024,
                 *, keep_identical: bool = False) -> None:
        self.path = Path(path)
        self.keep_identical = keep_identical
        self.changed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.record_type = record_type
        self.row_group_rows = max(1, int(row_group_rows))
        self.rows = 0
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._writer = pq.ParquetWriter(self._tmp, record_type.SCHEMA)
        self._pending: list[Record] = []

    def write(self, records: Iterable[Record]) -> None:
        for r in records:
            self._pending.append(r)
            if len(self._pending) >= self.row_group_rows:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = to_table(self._pending, self.record_type)  # type: ignore[arg-type]
            validate_table(table, self.record_type, source=f"<writing {self.path.name}>")
            self._writer.write_table(table)
            self.rows += table.num_rows
            self._pending = []

    def close(self) -> bool:
        """Finish the file; True when it replaced (or created) `path`."""
        self._flush()
        self._writer.close()
        if self.keep_identical and _sha256(self._tmp) == _sha256(self.path):
            self._tmp.unlink()
            self.changed = False
        else:
            os.replace(self._tmp, self.path)
            self.changed = True
        return self.changed

    def abort(self) -> None:
        """Discard the temp file (after `close`, nothing is left to discard)."""
        if self._tmp.exists():
            self._writer.close()
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def validate_table(table: pa.Table, record_type: type[Record], source: str) -> pa.Table:
    """Check columns, types, nullability, enum values and JSON columns; return the table in the
    declared column order. Extra columns are kept (forward compatible) but never required."""
    where = f"{source} ({record_type.__name__})"
    for field in record_type.SCHEMA:
        if field.name not in table.column_names and field.nullable:
            # a column added later with a null default: files written before it stay readable
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        if field.name not in table.column_names:
            raise SchemaError(
                f"{where}: missing column {field.name!r} (has: {', '.join(table.column_names)})"
            )
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise SchemaError(
                    f"{where}: column {field.name!r} has type {column.type}, expected {field.type}: {exc}"
                ) from exc
            table = table.set_column(table.schema.get_field_index(field.name), field, column)
        if not field.nullable and column.null_count:
            row = next(i for i, v in enumerate(column.is_null().to_pylist()) if v)
            raise SchemaError(f"{where}: column {field.name!r} row {row}: null in a non-nullable column")
        allowed = record_type.ENUMS.get(field.name)
        if allowed is not None:
            for row, value in enumerate(column.to_pylist()):
                if value is not None and value not in allowed:
                    raise SchemaError(
                        f"{where}: column {field.name!r} row {row}: {value!r} not in {list(allowed)}"
                    )
        if field.name in record_type.JSON_COLUMNS:
            for row, value in enumerate(column.to_pylist()):
                if value is None:
                    continue
                try:
                    json.loads(value)
                except (TypeError, json.JSONDecodeError) as exc:
                    raise SchemaError(
                        f"{where}: column {field.name!r} row {row}: not valid JSON ({exc})"
                    ) from exc
    declared = [f.name for f in record_type.SCHEMA]
    extra = [c for c in table.column_names if c not in declared]
    return table.select(declared + extra)
