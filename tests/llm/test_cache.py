"""The response cache: stable keys, append-only shards, torn lines, hand-recorded replay data."""

from __future__ import annotations

import json
import logging

import pytest

from xcoder.llm import ChatRequest, Completion, ResponseCache, record, request_key

MSGS = [{"role": "user", "content": "hello"}]


def test_key_covers_model_messages_params_template_but_not_meta():
    base = request_key("m", MSGS, {"temperature": 0.7, "seed": 1}, "t@1")
    assert base == request_key("m", MSGS, {"seed": 1, "temperature": 0.7, "n": 1, "top_k": None}, "t@1")
    assert base == request_key("m", MSGS, {"temperature": 0.7, "seed": 1.0}, "t@1")  # 1.0 == 1
    for other in (request_key("m2", MSGS, {"temperature": 0.7, "seed": 1}, "t@1"),
                  request_key("m", [{"role": "user", "content": "hello!"}], {"temperature": 0.7, "seed": 1}, "t@1"),
                  request_key("m", MSGS, {"temperature": 0.7, "seed": 2}, "t@1"),
                  request_key("m", MSGS, {"temperature": 0.7, "seed": 1, "n": 2}, "t@1"),
                  request_key("m", MSGS, {"temperature": 0.7, "seed": 1}, "t@2")):
        assert other != base


def _put(cache, text, key_suffix=""):
    messages = [{"role": "user", "content": text}]
    key = request_key("m", messages, {}, "t")
    cache.put(key, model="m", messages=messages, params={}, template_version="t",
              completions=[Completion(text=f"answer {text}")])
    return key


def test_put_get_reopen_and_one_shard_per_writer(tmp_path):
    with ResponseCache(tmp_path) as cache:
        keys = [_put(cache, f"q{i}") for i in range(3)]
        assert not cache.put(keys[0], model="m", messages=[{"role": "user", "content": "q0"}], params={},
                             template_version="t", completions=[Completion(text="dup")])  # no duplicate lines
    with ResponseCache(tmp_path) as cache2:
        assert len(cache2) == 3 and cache2.get(keys[1])[0].text == "answer q1"
        _put(cache2, "q3")
    assert len(list(tmp_path.glob("shard-*.jsonl"))) == 2
    assert len(ResponseCache(tmp_path)) == 4


def test_torn_and_tampered_lines_are_skipped_with_warning(tmp_path, caplog):
    with ResponseCache(tmp_path) as cache:
        good = _put(cache, "good")
        shard = cache._shard
    line = json.loads(shard.read_text().splitlines()[0])
    line["messages"][0]["content"] = "edited by hand"  # key no longer matches the request
    with open(shard, "a") as fh:
        fh.write(json.dumps(line) + "\n")
        fh.write('{"v":1,"key":"abc","model":"m","messa')  # writer died mid-line
    with caplog.at_level(logging.WARNING, logger="xcoder.llm.cache"):
        cache = ResponseCache(tmp_path)
    assert list(cache.keys()) == [good] and cache.skipped_lines == 2
    assert "torn last line" in caplog.text and "does not match" in caplog.text


def test_record_writes_replayable_entries(tmp_path):
    req = ChatRequest(messages=MSGS, params={"temperature": 0.7, "n": 2}, template_version="t@1", meta={"id": 1})
    key = record(tmp_path, req, ["<think>plan</think>answer A", {"text": "answer B", "finish_reason": "length"}],
                 model="m")
    assert key == request_key("m", MSGS, {"temperature": 0.7, "n": 2}, "t@1")
    comps = ResponseCache(tmp_path).get(key)
    assert [(c.text, c.reasoning, c.finish_reason) for c in comps] == [("answer A", "plan", "stop"),
                                                                       ("answer B", "", "length")]
    assert comps[0].provenance["endpoint"] == "recorded" and comps[0].provenance["template_version"] == "t@1"
    # many records through one open cache; a torn tail of recorded.jsonl does not swallow the next record
    with open(tmp_path / "recorded.jsonl", "a") as fh:
        fh.write('{"torn')
    with ResponseCache(tmp_path, shard_name="recorded.jsonl") as cache:
        keys = [record(tmp_path, ChatRequest(messages=[{"role": "user", "content": str(i)}]), [str(i)], model="m",
                       cache=cache)
                for i in range(3)]
    reloaded = ResponseCache(tmp_path)
    assert all(k in reloaded for k in keys + [key])
    with pytest.raises(ValueError, match="model"):
        record(tmp_path, req, ["x"])


def test_replay_cache_is_read_only(tmp_path):
    with pytest.raises(PermissionError):
        _put(ResponseCache(tmp_path, readonly=True), "x")


def test_summarize_counts_records_per_template(tmp_path):
    from xcoder.llm.cache import summarize

    for i in range(3):
        record(tmp_path, ChatRequest(messages=[{"role": "user", "content": str(i)}], template_version=f"t@{i % 2}"),
               ["a", "b"], model="m")
    info = summarize(tmp_path)
    assert info["records"] == 3 and info["completions"] == 6 and info["shards"] == 1
    assert info["by_template_and_model"] == {"t@0 | m": 2, "t@1 | m": 1}
