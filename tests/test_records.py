"""Stage records round-trip through parquet and malformed files fail naming file, column, row."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xcoder.records import (
    RECORD_TYPES,
    FeatureSubtree,
    RLRow,
    SchemaError,
    SFTRow,
    Solution,
    Task,
    TestInput,
    Verification,
    read_records,
    read_table,
    write_records,
)

SAMPLES = {
    FeatureSubtree: FeatureSubtree(idx=3, features=json.dumps({"algorithm": {"sort": ["merge sort"]}}),
                                   leaf_count=1, mandatory_features=["sort"], sampler='{"seed": 1}'),
    Task: Task(task_id="t1", subtree_idx=3, style="leetcode", question="Q", stage1="{}",
               fn_name="twoSum", starter_code="class Solution: ..."),
    Solution: Solution(solution_id="t1-s0", task_id="t1", teacher="r1", response="ans",
                       reasoning="think", code="print(1)", num_tokens=12),
    TestInput: TestInput(test_id="t1-i0", task_id="t1", input="1 2\n", source="generator", tag="stress",
                         generator='{"seed": 5}'),
    Verification: Verification(task_id="t1", status="kept", reason="", kind="stdio",
                               tests=json.dumps([{"input": "1", "output": "2", "weight": 1.0}]),
                               golden_solution_id="t1-s0", golden_select_score=1.0, golden_holdout_pass=1.0),
    SFTRow: SFTRow(id="t1-s0", task_id="t1", messages=[{"role": "user", "content": "Q"},
                   {"role": "assistant", "content": "<think>x</think>ans"}], query="Q",
                   response="<think>x</think>ans", style="codeforces", teacher="r1"),
    RLRow: RLRow(data_source="xcoder", prompt=[{"role": "user", "content": "Q"}], ability="code",
                 reward_model={"style": "rule", "ground_truth": "{}"},
                 extra_info={"task_id": "t1", "index": 0, "style": "atcoder", "kind": "stdio",
                             "fn_name": None, "pass_rate": 1.0, "difficulty": "easy", "confidence": 0.97,
                             "verification": "{\"cluster\": 6}"}),
}


def test_every_record_type_has_a_sample():
    assert set(SAMPLES) == set(RECORD_TYPES.values())


@pytest.mark.parametrize("record_type", list(SAMPLES), ids=lambda t: t.__name__)
def test_round_trip(tmp_path, record_type):
    path = write_records(tmp_path / "x.parquet", [SAMPLES[record_type]] * 2, record_type)
    assert read_records(path, record_type) == [SAMPLES[record_type]] * 2


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "tasks.parquet"
    table = pa.Table.from_pylist([{"task_id": "t", "subtree_idx": 1, "style": "atcoder"}])
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match=r"tasks\.parquet.*missing column 'question'"):
        read_table(path, Task)


def test_wrong_type_names_column(tmp_path):
    path = write_records(tmp_path / "s.parquet", [SAMPLES[Solution]], Solution)
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index("num_tokens"), "num_tokens",
                             pa.array(["many"]))
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match=r"s\.parquet.*column 'num_tokens'"):
        read_table(path, Solution)


def test_bad_enum_value_names_column_and_row(tmp_path):
    rows = [SAMPLES[Task], Task(task_id="t2", subtree_idx=1, style="topcoder", question="Q", stage1="{}")]
    table = pa.Table.from_pylist([r.to_row() for r in rows], schema=Task.SCHEMA)
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(SchemaError, match=r"column 'style' row 1: 'topcoder'"):
        read_table(tmp_path / "t.parquet", Task)


def test_null_in_required_column_names_row(tmp_path):
    data = SAMPLES[TestInput].to_row()
    table = pa.Table.from_pylist([data, {**data, "input": None}])
    pq.write_table(table, tmp_path / "i.parquet")
    with pytest.raises(SchemaError, match=r"column 'input' row 1: null"):
        read_table(tmp_path / "i.parquet", TestInput)


def test_invalid_json_column_names_row(tmp_path):
    data = SAMPLES[Verification].to_row()
    table = pa.Table.from_pylist([data, {**data, "tests": "{not json"}], schema=Verification.SCHEMA)
    pq.write_table(table, tmp_path / "v.parquet")
    with pytest.raises(SchemaError, match=r"column 'tests' row 1: not valid JSON"):
        read_table(tmp_path / "v.parquet", Verification)


def test_not_parquet_and_missing_file(tmp_path):
    (tmp_path / "junk.parquet").write_text("hello")
    with pytest.raises(SchemaError, match="not a readable parquet"):
        read_table(tmp_path / "junk.parquet", Task)
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        read_table(tmp_path / "nope.parquet", Task)


def test_writer_rejects_bad_records(tmp_path):
    bad = Task(task_id="t", subtree_idx=1, style="nope", question="Q", stage1="{}")
    with pytest.raises(SchemaError, match="style"):
        write_records(tmp_path / "t.parquet", [bad], Task)
    assert not (tmp_path / "t.parquet").exists()


def test_rl_parquet_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    path = write_records(tmp_path / "rl.parquet", [SAMPLES[RLRow]] * 3, RLRow)
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert ds[0]["reward_model"]["style"] == "rule" and ds[0]["prompt"][0]["role"] == "user"
