"""Synthesis at scale: streamed parquet I/O, the offset-indexed journal, merge-joins, windowed units,
and the scale benchmark's kill -9 / resume guarantee at a small size."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from xcoder.records import RecordWriter, SchemaError, Task, count_rows, iter_record_batches, iter_records
from xcoder.synth.common import GroupedReader, Journal, stream_units


def _task(i: int) -> Task:
    return Task(task_id=f"t{i:04d}", subtree_idx=i, style="codeforces", question=f"q{i}", stage1="{}")


def test_record_writer_streams_row_groups_renames_when_done_and_keeps_identical_files(tmp_path):
    path = tmp_path / "tasks.parquet"
    with RecordWriter(path, Task, row_group_rows=10) as out:
        out.write(_task(i) for i in range(25))
        assert not path.exists()  # readers never see half a file
    assert pq.ParquetFile(path).metadata.num_row_groups == 3 and count_rows(path) == 25
    assert [len(b) for b in iter_record_batches(path, Task, batch_rows=10)] == [10, 10, 5]
    mtime = path.stat().st_mtime_ns
    with RecordWriter(path, Task, row_group_rows=10, keep_identical=True) as again:
        again.write(_task(i) for i in range(25))
    assert not again.changed and path.stat().st_mtime_ns == mtime
    with pytest.raises(RuntimeError):
        with RecordWriter(path, Task) as broken:
            broken.write([_task(0)])
            raise RuntimeError("killed mid-write")
    assert count_rows(path) == 25 and [p.name for p in tmp_path.iterdir()] == ["tasks.parquet"]
    with pytest.raises(SchemaError):
        list(iter_records(path, type("Wrong", (Task,), {"SCHEMA": Task.SCHEMA.append(
            Task.SCHEMA.field("question").with_name("missing"))})))


def test_journal_keeps_offsets_not_records_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.add("a", [{"x": "1" * 1000}], {"d": 1})
    j.add("b", [{"x": 2}])
    with open(path, "a") as fh:
        fh.write('{"key": "c", "records": [')  # killed mid-write
    again = Journal(path)
    assert "a" in again and "b" in again and "c" not in again and len(again) == 2
    assert all(isinstance(v, int) for v in again._offsets.values())  # an index, no records held
    assert again.get("a")["records"][0]["x"] == "1" * 1000 and again.get("a")["drops"] == {"d": 1}
    again.add("c", [{"x": 3}])  # starts on a fresh line after the torn one
    assert [e["key"] for e in Journal(path).entries(["c", "zz", "a"])] == ["c", "a"]


def test_grouped_reader_joins_in_order_and_tolerates_rows_out_of_order():
    rows = [("t1", 1), ("t1", 2), ("t3", 3), ("t2", 4), ("t4", 5)]
    g = GroupedReader(iter(rows), key=lambda r: r[0])
    assert g.take("t1") == [("t1", 1), ("t1", 2)]
    assert g.take("t2") == [("t2", 4)]  # t3 was read ahead and held
    assert g.take("t3") == [("t3", 3)]
    assert g.take("t9") == [] and g.take("t4") == [("t4", 5)]  # t4 was read ahead while looking for t9


def test_stream_units_processes_only_missing_units_and_emits_in_unit_order(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    for k in ("u1", "u4"):
        j.add(k, [{"k": k}])
    processed, emitted = [], []

    def process(todo):
        processed.append([k for k, _ in todo])
        for k, _ in reversed(todo):  # finish in any order
            j.add(k, [{"k": k}])

    seen, resumed = stream_units(((f"u{i}", i) for i in range(6)), j, window=4, process=process,
                                 emit=lambda e: emitted.append(e["key"]))
    assert (seen, resumed) == (6, 2)
    assert processed == [["u0", "u2", "u3"], ["u5"]]
    assert emitted == [f"u{i}" for i in range(6)]


def test_fake_server_answers_with_a_responder_and_counts_repeats_by_digest():
    import urllib.request

    from xcoder.llm.fake_server import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        server.state.responder = lambda prompt, body, i: f"{prompt[::-1]}#{i}"
        server.state.hash_prompts = True
        for seed in (1, 2, 1):
            req = urllib.request.Request(server.url + "/chat/completions", method="POST", data=json.dumps(
                {"model": "m", "seed": seed, "messages": [{"role": "user", "content": "abc"}]}).encode())
            with urllib.request.urlopen(req) as r:
                assert json.loads(r.read())["choices"][0]["message"]["content"] == "cba#0"
        stats = server.stats()
    assert stats["requests"] == 3 and stats["distinct_prompts"] == 2 and stats["repeated"] == 1
    assert stats["per_prompt"] == {}  # digests only: a long run's stats stay small


@pytest.mark.slow
def test_scale_chain_killed_mid_verify_resumes_without_loss_repeat_or_difference(tmp_path):
    """The benchmark's machinery at a small size: the whole chain against the fake server, then the
    same chain SIGKILLed at half of verify and rerun — nothing lost, no LLM request repeated, every
    output parquet equal to the uninterrupted run's; `datasets` and the SFT stage's reader read them."""
    from xcoder.synth import bench_scale

    port = bench_scale.free_port()
    small_batches = ["synth.batch_size=2", "synth.verify.tasks_per_judge_batch=2"]  # a midpoint to kill at
    ref = bench_scale.measure(12, tmp_path, port, small_batches)
    assert ref["returncode"] == 0 and ref["kept"] == 12 and ref["repeated"] == 0
    res = bench_scale.kill_and_resume(12, tmp_path, ref["outputs"], port, small_batches)
    assert res["killed"] and 0 < res["verify_done_at_kill"] < 12
    assert res["resumed_units"] == res["verify_done_at_kill"] and res["resumed_units"] + res["processed_units"] == 12
    assert res["repeated"] == 0 and res["identical"], res["differing"]

    from datasets import load_dataset

    from xcoder.sft.data import synth_examples

    export = tmp_path / "n12_killed" / "synth" / "export"
    sft = load_dataset("parquet", data_files=str(export / "sft.parquet"), split="train")
    rl = load_dataset("parquet", data_files=str(export / "rl.parquet"), split="train")
    assert len(sft) == ref["sft_rows"] and len(rl) == 12 and rl[0]["extra_info"]["confidence"] is not None
    assert sum(1 for _ in synth_examples(export / "sft.parquet")) == ref["sft_rows"]
