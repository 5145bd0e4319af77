"""SFT data conversion: both sources become ms-swift `messages` JSONL with the CoT kept inline,
bad rows are dropped by counted reason, lengths are filtered with the model tokenizer, reruns reuse."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from xcoder.config import compose
from xcoder.records import SchemaError, SFTRow, write_records
from xcoder.sft import data as sft_data
from xcoder.sft.data import SFTDataError, check_messages, percentiles

from .samples import sft_rows, write_released_jsonl, write_sft_parquet


def data_cfg(tmp_path, **overrides):
    cfg = compose(["experiment=demo", f"run.output_dir={tmp_path}/run"] + [f"sft.data.{k}={v}" for k,
                                                                           v in overrides.items()])
    return cfg.sft.data


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


U, A = "user", "assistant"


@pytest.mark.parametrize("messages, reason", [
    ([], "no_messages"),
    ([{"role": "bot", "content": "x"}], "bad_role"),
    ([{"role": U, "content": "q"}, {"role": A, "content": "  "}], "empty_turn"),
    ([{"role": A, "content": "a"}], "no_user_turn"),
    ([{"role": U, "content": "q"}], "no_assistant_turn"),
    ([{"role": U, "content": "q"}, {"role": A, "content": "<think>reasoning cut off"}], "unclosed_think"),
    ([{"role": U, "content": "q"}, {"role": A, "content": "</think> answer <think>"}], "unclosed_think"),
    ([{"role": U, "content": "q"}, {"role": A, "content": "<think>r</think>\n\n"}], "empty_answer"),
    ([{"role": U, "content": "q"}, {"role": A, "content": "<think>r</think>\n\nanswer"}], None),
    ([{"role": "system", "content": "s"}, {"role": U, "content": "q"}, {"role": A, "content": "plain answer"}], None),
])
def test_check_messages_names_the_defect(messages, reason):
    assert check_messages(messages) == reason


def test_percentiles_nearest_rank():
    p = percentiles(list(range(1, 101)))
    assert (p["p50"], p["p90"], p["p99"], p["max"], p["min"]) == (50, 90, 99, 100, 1)
    assert percentiles([]) == {}


def test_synth_parquet_converts_keeping_think_and_counts_drops(tmp_path, tiny_model):
    rows = sft_rows(6)
    rows.append(rows[0])  # exact duplicate conversation
    bad = sft_rows(1, seed=9)[0]
    bad.id, bad.messages = "bad", [{"role": U, "content": "q"}, {"role": A, "content": "<think>never closed"}]
    rows.append(bad)
    long_ = sft_rows(1, seed=7)[0]
    long_.id = "long"
    long_.messages = [{"role": U, "content": "q " * 600}, {"role": A, "content": "<think>r</think>\n\nok"}]
    rows.append(long_)
    parquet = write_records(tmp_path / "sft.parquet", rows, SFTRow)
    cfg = data_cfg(tmp_path, train_parquet=parquet, max_tokens=300)
    cfg_tok = str(tiny_model)

    jsonl, stats = sft_data.prepare(cfg, tokenizer_path=cfg_tok)

    out = read_jsonl(jsonl)
    assert len(out) == 6 and stats.rows_read == 9 and stats.rows_written == 6
    assert stats.dropped == {"duplicate": 1, "too_long": 1, "unclosed_think": 1}
    assert out[0] == {"messages": rows[0].messages}  # the assistant turn keeps <think>…</think> + answer
    content = out[0]["messages"][-1]["content"]
    assert content.startswith("<think>\n") and "</think>\n\nThe answer" in content
    assert stats.with_think == 6 and 0 < stats.tokens["p50"] <= stats.tokens["max"] <= 300
    on_disk = json.loads((jsonl.parent / "stats.json").read_text())
    assert on_disk["dropped"] == stats.dropped and on_disk["rows_written"] == 6 and on_disk["tokens"]["p99"] > 0


def test_conversion_is_reused_until_an_input_changes(tmp_path, tiny_model):
    parquet = write_sft_parquet(tmp_path / "sft.parquet", n=4)
    cfg = data_cfg(tmp_path, train_parquet=parquet)
    jsonl, first = sft_data.prepare(cfg, tokenizer_path=str(tiny_model))
    mtime = jsonl.stat().st_mtime_ns
    _, again = sft_data.prepare(cfg, tokenizer_path=str(tiny_model))
    assert again.key == first.key and jsonl.stat().st_mtime_ns == mtime  # not rewritten
    cfg2 = data_cfg(tmp_path, train_parquet=parquet, max_tokens=1000)  # a filter change rebuilds
    _, changed = sft_data.prepare(cfg2, tokenizer_path=str(tiny_model))
    assert changed.key != first.key and changed.max_tokens == 1000
    assert json.loads((jsonl.parent / "stats.json").read_text())["key"] == changed.key
    write_sft_parquet(parquet, n=3)  # so does a new synthesis output
    _, rebuilt = sft_data.prepare(cfg2, tokenizer_path=str(tiny_model))
    assert rebuilt.key != changed.key and rebuilt.rows_written == 3


def test_require_think_drops_plain_answers(tmp_path, tiny_model):
    rows = sft_rows(3)
    rows[1].messages = [{"role": U, "content": "q"}, {"role": A, "content": "just the code"}]
    parquet = write_records(tmp_path / "sft.parquet", rows, SFTRow)
    _, stats = sft_data.prepare(data_cfg(tmp_path, train_parquet=parquet, require_think=True), str(tiny_model))
    assert stats.rows_written == 2 and stats.dropped == {"no_think": 1}


def test_malformed_sft_parquet_is_rejected_naming_file_and_column(tmp_path, tiny_model):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"id": ["a"], "query": ["q"]}), path)
    with pytest.raises(SchemaError, match=r"broken\.parquet.*missing column 'task_id'"):
        sft_data.prepare(data_cfg(tmp_path, train_parquet=path), str(tiny_model))


def test_missing_synth_parquet_names_the_key(tmp_path, tiny_model):
    with pytest.raises(SFTDataError, match="sft.data.train_parquet.*no such file"):
        sft_data.prepare(data_cfg(tmp_path, train_parquet=tmp_path / "nope.parquet"), str(tiny_model))


def test_nothing_trainable_is_an_error(tmp_path, tiny_model):
    parquet = write_sft_parquet(tmp_path / "sft.parquet", n=2)
    with pytest.raises(SFTDataError, match="no trainable SFT rows"):
        sft_data.prepare(data_cfg(tmp_path, train_parquet=parquet, max_tokens=5), str(tiny_model))
    assert not (tmp_path / "run/sft/data/train.jsonl").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_released_format_local_file_converts(tmp_path, tiny_model, fmt):
    src = write_released_jsonl(tmp_path / "hybrid.jsonl", n=5)
    if fmt == "parquet":
        import pandas as pd

        pd.read_json(src, lines=True).to_parquet(tmp_path / "hybrid.parquet")
        src = tmp_path / "hybrid.parquet"
    cfg = data_cfg(tmp_path, source="released", **{"released.path": src, "limit": 4})
    jsonl, stats = sft_data.prepare(cfg, tokenizer_path=str(tiny_model))
    out = read_jsonl(jsonl)
    first = json.loads(open(tmp_path / "hybrid.jsonl").readline())
    assert stats.source == "released" and stats.rows_read == 4 and len(out) == 4
    assert out[0]["messages"] == [{"role": "user", "content": first["query"]},
                                  {"role": "assistant", "content": first["response"]}]


def test_released_data_without_query_response_columns_is_rejected(tmp_path, tiny_model):
    (tmp_path / "odd.jsonl").write_text(json.dumps({"prompt": "q", "answer": "a"}) + "\n")
    cfg = data_cfg(tmp_path, source="released", **{"released.path": tmp_path / "odd.jsonl"})
    with pytest.raises(SFTDataError, match=r"missing column\(s\) \['query', 'response'\]"):
        sft_data.prepare(cfg, str(tiny_model))


def test_released_hub_id_goes_through_datasets_load_dataset(monkeypatch):
    """Online, the hub id and the subset file reach `datasets.load_dataset` unchanged."""
    import datasets

    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return datasets.Dataset.from_list([{"query": "q", "response": "<think>r</think>\n\na"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    cfg = compose([]).sft.data.released
    examples = list(sft_data.released_examples(str(cfg.path), data_files=cfg.data_files, split=cfg.split,
                                               revision=cfg.revision))
    assert calls == [("IIGroup/X-Coder-SFT-376k",
                      {"data_files": "hybrid_376k.jsonl", "split": "train", "revision": None})]
    assert examples[0].messages[-1]["content"] == "<think>r</think>\n\na"


def test_missing_local_released_path_is_a_clear_error(tmp_path):
    with pytest.raises(SFTDataError, match="no such file or directory"):
        list(sft_data.released_examples(str(tmp_path / "missing" / "data.jsonl")))
    with pytest.raises(SFTDataError, match="no such file or directory"):  # relative file path, not a hub id
        list(sft_data.released_examples("data/hybrid_376k.jsonl"))


def test_unknown_source_is_rejected(tmp_path):
    cfg = OmegaConf.create({"source": "web"})
    with pytest.raises(SFTDataError, match="'synth' or 'released'"):
        sft_data.source_identity(cfg)
