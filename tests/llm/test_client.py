"""The client against a real loopback HTTP server with injected faults (xcoder.llm.fake_server)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from xcoder.config import compose
from xcoder.llm import ChatRequest, LLMClient, LLMConfigError, ReplayMiss
from xcoder.llm.fake_server import FakeOpenAIServer


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def req(text, **params):
    return ChatRequest(messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": text}],
                       params=params, template_version="test@1", meta={"text": text})


def client(urls, tmp_path=None, **kw):
    kw.setdefault("backoff_base_s", 0.02)
    kw.setdefault("backoff_max_s", 0.2)
    return LLMClient(urls if isinstance(urls, list) else [urls], "fake-model", cache_dir=tmp_path,
                     progress=False, **kw)


def test_results_ordered_with_provenance_reasoning_and_n(server, tmp_path):
    reqs = [req(f"q{i} [[think]]", n=3, seed=i, temperature=0.7, top_k=20) for i in range(5)]
    reqs.append(req("r [[reasoning_field]]"))
    results = client(server.url, tmp_path, stage="tasks").run(reqs)
    assert [r.request.meta["text"] for r in results] == [r.meta["text"] for r in reqs]
    first = results[0]
    assert first.error is None and not first.cached and len(first.completions) == 3
    assert [c.text for c in first.completions] == [f"echo[{i}] seed=0: q0 [[think]]" for i in range(3)]
    assert first.completions[1].reasoning == "thinking about 1"
    assert results[-1].completions[0].reasoning == "reasoning 0"
    prov = first.completions[0].provenance
    assert prov["endpoint"] == server.url and prov["model"] == "fake-model" and prov["template_version"] == "test@1"
    assert prov["params"] == {"n": 3, "seed": 0, "temperature": 0.7, "top_k": 20} and prov["seed"] == 0
    assert prov["tokens"]["completion"] == 21 and prov["latency_s"] > 0 and prov["key"] == first.key


def test_retries_on_429_500_malformed_and_timeout(server, tmp_path):
    reqs = [req("a [[fail:429x2]]"), req("b [[fail:500x3]]"), req("c [[malformed:x2]]"),
            req("d [[slow:1.5x1]]"), req("e [[fail:503x99]]")]
    c = client(server.url, tmp_path, timeout_s=0.5, max_retries=3)
    results = c.run(reqs)
    assert [r.error is None for r in results] == [True, True, True, True, False]
    assert "HTTP 503" in results[4].error and "gave up after 4 attempts" in results[4].error
    per_prompt = server.stats()["per_prompt"]
    assert [per_prompt[r.messages[-1]["content"]] for r in reqs] == [3, 4, 3, 2, 4]
    assert results[0].completions[0].provenance["attempts"] == 3
    usage = c.usage()["default"]
    assert usage["errors"] == 1 and usage["retries"] == 2 + 3 + 2 + 1 + 3


def test_client_errors_are_not_retried(server, tmp_path):
    results = client(server.url, tmp_path).run([req("x [[fail:400x9]]"), req("fine")])
    assert results[0].error.startswith("HTTP 400") and results[1].error is None
    assert server.stats()["per_prompt"]["x [[fail:400x9]]"] == 1


def test_retry_after_is_honoured(server):
    t0 = time.monotonic()
    result = client(server.url).run([req("x [[fail:429x1]] [[retry_after:0.6]]")])[0]
    assert result.error is None and time.monotonic() - t0 >= 0.6  # backoff alone would be <= 0.2 s


def test_concurrency_bound_is_respected_and_used(tmp_path):
    with FakeOpenAIServer(delay_s=0.05) as srv:
        client(srv.url, tmp_path, concurrency=7).run([req(f"q{i}") for i in range(60)])
        assert srv.stats()["max_inflight"] == 7
        assert srv.stats()["requests"] == 60


def test_rerun_makes_zero_requests_and_dedupes(server, tmp_path):
    reqs = [req(f"q{i}", seed=1) for i in range(20)] + [req("q0", seed=1)]  # a duplicate key is sent once
    first = client(server.url, tmp_path).run(reqs)
    assert server.stats()["requests"] == 20 and not any(r.cached for r in first)
    assert first[0].key == first[-1].key and first[-1].completions[0].text == first[0].completions[0].text
    c = client(server.url, tmp_path)
    second = c.run(reqs)
    assert server.stats()["requests"] == 20  # zero new requests
    assert all(r.cached for r in second)
    assert [r.completions[0].to_json() for r in second] == [r.completions[0].to_json() for r in first]
    assert c.usage()["default"]["cache_hits"] == 20 and c.usage()["default"]["calls"] == 0


def test_failed_requests_are_not_cached_and_retried_on_resume(server, tmp_path):
    assert client(server.url, tmp_path, max_retries=0).run([req("x [[fail:500x1]]")])[0].error
    assert client(server.url, tmp_path, max_retries=0).run([req("x [[fail:500x1]]")])[0].error is None


def test_replay_serves_cache_and_raises_on_miss(server, tmp_path):
    client(server.url, tmp_path).run([req("known")])
    replay = LLMClient([], "fake-model", mode="replay", cache_dir=tmp_path, progress=False)
    assert replay.run([req("known")])[0].cached
    with pytest.raises(ReplayMiss, match=r"template 'test@1'.*1 of 2"):
        replay.run([req("known"), req("unknown")])
    assert server.stats()["requests"] == 1
    with pytest.raises(LLMConfigError, match="does not exist"):
        LLMClient([], "m", mode="replay", cache_dir=tmp_path / "nope")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_failover_and_load_spreading(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with FakeOpenAIServer(delay_s=0.01) as a, FakeOpenAIServer(delay_s=0.01) as b:
        results = client([dead, a.url, b.url], tmp_path, concurrency=8).run([req(f"q{i}") for i in range(80)])
        assert all(r.error is None for r in results)
        served = (a.stats()["requests"], b.stats()["requests"])
        assert sum(served) == 80 and min(served) >= 20  # both live servers share the load
        assert {r.completions[0].provenance["endpoint"] for r in results} == {a.url, b.url}


def test_api_key_sent_but_never_stored(server, tmp_path, monkeypatch):
    monkeypatch.setenv("XCODER_TEST_KEY", "sk-secret-123")
    cfg = compose([f"llm.endpoints=[{server.url}]", "llm.model=fake-model", f"llm.cache_dir={tmp_path}",
                   "llm.api_key_env=XCODER_TEST_KEY", "llm.progress=false"]).llm
    c = LLMClient.from_config(cfg, stage="solutions")
    assert c._api_key == "sk-secret-123"
    result = c.run([req("q")])[0]
    assert result.error is None and "sk-secret" not in repr(result)
    assert all("sk-secret" not in p.read_text() for p in tmp_path.iterdir())
    assert list(c.usage()) == ["solutions"]


def test_arun_inside_event_loop_and_run_from_async_code(server, tmp_path):
    c = client(server.url, tmp_path)

    async def main():
        direct = await c.arun([req("a")])
        wrapped = c.run([req("b")])  # sync wrapper called from a running loop
        return direct, wrapped

    direct, wrapped = asyncio.run(main())
    assert direct[0].error is None and wrapped[0].error is None


def test_sampling_params_sent_as_body_fields_and_drop_params(server, tmp_path):
    c = client(server.url, tmp_path, drop_params=["min_p"])
    c.run([req("p", temperature=0.7, top_k=20, min_p=0.0, repetition_penalty=1.05, max_tokens=64)])
    keys = server.stats()["body_keys"]["p"]
    assert {"top_k", "repetition_penalty", "temperature", "max_tokens", "n", "model", "messages"} <= set(keys)
    assert "min_p" not in keys


def test_split_n_for_apis_without_n(server, tmp_path):
    result = client(server.url, tmp_path, split_n=True).run([req("q", n=3, seed=5)])[0]
    assert [c.text for c in result.completions] == [f"echo[0] seed={s}: q" for s in (5, 6, 7)]
    assert server.stats()["requests"] == 3
    assert [c.provenance["index"] for c in result.completions] == [0, 1, 2]


def test_split_n_keeps_the_concurrency_bound(tmp_path):
    with FakeOpenAIServer(delay_s=0.03) as srv:
        results = client(srv.url, tmp_path, concurrency=4,
                         split_n=True).run([req(f"q{i}", n=5, seed=i) for i in range(8)])
        assert all(len(r.completions) == 5 for r in results)
        assert srv.stats()["requests"] == 40 and srv.stats()["max_inflight"] == 4


def test_split_n_failure_of_one_sub_call_fails_the_request(server, tmp_path):
    result = client(server.url, tmp_path, split_n=True, max_retries=0).run([req("q [[fail:500x1]]", n=3, seed=1)])[0]
    assert result.error and "HTTP 500" in result.error and not result.completions


def test_retry_after_header_forms():
    import email.utils

    from xcoder.llm.client import _retry_after

    assert _retry_after("2.5") == 2.5 and _retry_after(None) is None and _retry_after("soon") is None
    in_10s = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= _retry_after(in_10s) <= 10


def _llm_cfg(tmp_path, endpoints, *extra):
    quoted = ",".join(f"'{e}'" for e in endpoints)  # Hydra: [::1] inside a list needs quotes
    return compose([f"llm.endpoints=[{quoted}]", "llm.model=fake-model", f"llm.cache_dir={tmp_path}",
                    "llm.progress=false", *extra]).llm


@pytest.mark.parametrize("value", [None, ""])
def test_missing_api_key_for_a_remote_endpoint_is_a_config_error(tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("XCODER_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("XCODER_TEST_KEY", value)
    cfg = _llm_cfg(tmp_path, ["http://127.0.0.1:8000/v1", "https://api.example.com/v1"],
                   "llm.api_key_env=XCODER_TEST_KEY")
    with pytest.raises(LLMConfigError, match=r"XCODER_TEST_KEY is empty or unset.*api\.example\.com.*api_key_env=null"):
        LLMClient.from_config(cfg, stage="tasks")


def test_missing_api_key_is_fine_for_loopback_servers_or_an_explicit_null(tmp_path, monkeypatch):
    monkeypatch.delenv("XCODER_TEST_KEY", raising=False)
    local = _llm_cfg(tmp_path, ["http://127.0.0.1:8000/v1", "http://localhost:8001/v1", "http://[::1]:8002/v1"],
                     "llm.api_key_env=XCODER_TEST_KEY")
    assert LLMClient.from_config(local, stage="tasks")._api_key is None  # local vLLM servers need no key
    remote_no_key = _llm_cfg(tmp_path, ["https://api.example.com/v1"], "llm.api_key_env=null")
    assert LLMClient.from_config(remote_no_key, stage="tasks")._api_key is None
