"""The LLM client: many chat requests, concurrently, against a fleet of OpenAI-compatible servers.

Why raw aiohttp instead of the `openai` SDK: the SDK builds pydantic models and an httpx request per
call; measured with `python -m xcoder.llm.bench` it needs ~7 ms of client CPU per request at
concurrency 256 against ~0.25–0.35 ms here (README: benchmark), far below the 500 req/s target.

Every request goes: cache lookup -> (miss) HTTP call with retries/failover -> cache append -> result.
A request is "finished" only once its line is in the cache, so a killed run loses nothing that was
reported done, and a rerun makes no call for it. Identical requests (same key) in one batch are
sent once. Non-standard sampling params (top_k, min_p, repetition_penalty, ...) are sent as extra
top-level body fields — what the SDK's `extra_body` does — which vLLM and SGLang read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import email.utils
import ipaddress
import json
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from xcoder.llm.cache import Prepared, ResponseCache
from xcoder.llm.endpoints import Endpoint, EndpointPool, redact_url
from xcoder.llm.reasoning import split_reasoning
from xcoder.llm.types import ChatRequest, ChatResult, Completion, LLMConfigError, ReplayMiss
from xcoder.llm.usage import UsageMeter, format_usage

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))
MODES = ("live", "replay")


class _Malformed(ValueError):
    """The server answered 200 with a body that is not a chat completion."""


class _Failed(Exception):
    """A call failed for good (non-retryable status, or retries exhausted); the message says why."""


@dataclasses.dataclass
class _Answer:
    choices: list[tuple[str, str, str | None]]
    data: dict[str, Any]
    endpoint: Endpoint
    latency: float
    attempts: int


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _token_counts(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    if type(usage) is not dict:
        return None
    details = usage.get("completion_tokens_details") or {}
    out = {"prompt": int(usage.get("prompt_tokens") or 0), "completion": int(usage.get("completion_tokens") or 0),
           "total": int(usage.get("total_tokens") or 0)}
    if type(details) is dict and details.get("reasoning_tokens"):
        out["reasoning"] = int(details["reasoning_tokens"])
    return out


def parse_chat_response(body: bytes) -> tuple[list[tuple[str, str, str | None]], dict[str, Any]]:
    """[(reasoning, text, finish_reason)] in choice order, plus the decoded response; _Malformed if not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Malformed(f"response is not JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise _Malformed(f"response has no choices: {str(body[:160])}")
    choices = sorted(data["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    out = []
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise _Malformed("a choice has no message")
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise _Malformed(f"message content is a {type(content).__name__}, not text")
        field = message.get("reasoning_content") or message.get("reasoning") or ""
        inline, text = split_reasoning(content)
        reasoning = "\n\n".join(p for p in (str(field).strip(), inline) if p)
        out.append((reasoning, text, choice.get("finish_reason")))
    return out, data


def is_loopback_url(url: str) -> bool:
    """True for http(s)://localhost|127.x|[::1] URLs: a local vLLM server that needs no API key."""
    host = urlsplit(str(url).strip()).hostname
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_keyless_endpoints(key_env: str, endpoints: Sequence[str]) -> None:
    """`llm.api_key_env` names an empty/unset variable: fine for local servers, a config error otherwise.

    Sending keyless requests to a remote API would only fail later as a wall of 401s (or, worse,
    reach an endpoint that should have been protected); `llm.api_key_env: null` opts out explicitly.
    """
    remote = [redact_url(str(e)) for e in endpoints if not is_loopback_url(str(e))]
    if remote:
        raise LLMConfigError(
            f"llm.api_key_env={key_env}: the environment variable {key_env} is empty or unset, but endpoint(s) "
            f"{', '.join(remote)} are not loopback; export {key_env}=<key>, or set llm.api_key_env=null "
            f"if they need no key")
    log.info("llm: env var %s is not set; calling loopback endpoints without an API key", key_env)


class LLMClient:
    """Concurrent, cached, replayable chat completions; see the module doc and contracts.md."""

    def __init__(
        self,
        endpoints: Sequence[str],
        model: str,
        *,
        stage: str = "default",
        concurrency: int = 64,
        timeout_s: float = 300.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        mode: str = "live",
        cache_dir: str | os.PathLike | None = None,
        api_key: str | None = None,
        price_per_mtok_in: float = 0.0,
        price_per_mtok_out: float = 0.0,
        drop_params: Sequence[str] = (),
        split_n: bool = False,
        cache_fsync_s: float = 1.0,
        progress: bool = True,
    ):
        if mode not in MODES:
            raise LLMConfigError(f"llm.mode must be one of {MODES}, got {mode!r}")
        if concurrency < 1:
            raise LLMConfigError(f"llm.concurrency must be >= 1, got {concurrency}")
        if not model:
            raise LLMConfigError("llm.model is empty")
        self.model = str(model)
        self.stage = stage
        self.mode = mode
        self.concurrency = int(concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self._timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        self.drop_params = frozenset(drop_params)
        self.split_n = bool(split_n)
        self.progress = progress
        self._api_key = api_key
        self._rng = random.Random()
        self.pool = EndpointPool(endpoints) if mode == "live" else None
        self.meter = UsageMeter(price_per_mtok_in, price_per_mtok_out)
        self.meter.stage(stage)
        self.cache: ResponseCache | None = None
        if cache_dir is not None:
            if mode == "replay" and not os.path.isdir(cache_dir):
                raise LLMConfigError(f"llm.mode=replay but the cache directory {cache_dir} does not exist")
            self.cache = ResponseCache(cache_dir, readonly=(mode == "replay"), fsync_s=cache_fsync_s)
        elif mode == "replay":
            raise LLMConfigError("llm.mode=replay needs llm.cache_dir")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], stage: str = "default", **overrides: Any) -> LLMClient:
        """Build from the Hydra `llm` group. The API key is read from the env var it names, never from cfg."""
        get = cfg.get
        key_env = get("api_key_env")
        api_key = os.environ.get(str(key_env)) if key_env else None
        endpoints = get("endpoints") or []
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        kwargs: dict[str, Any] = dict(
            endpoints=list(endpoints), model=get("model"), stage=stage,
            concurrency=int(get("concurrency", 64)), timeout_s=float(get("timeout_s", 300)),
            max_retries=int(get("max_retries", 6)), backoff_base_s=float(get("backoff_base_s", 1.0)),
            backoff_max_s=float(get("backoff_max_s", 60.0)), mode=str(get("mode", "live")),
            cache_dir=get("cache_dir"), api_key=api_key,
            price_per_mtok_in=float(get("price_per_mtok_in", 0.0) or 0.0),
            price_per_mtok_out=float(get("price_per_mtok_out", 0.0) or 0.0),
            drop_params=list(get("drop_params") or []), split_n=bool(get("split_n", False)),
            cache_fsync_s=float(get("cache_fsync_s", 1.0)),
            progress=bool(get("progress", True)),
        )
        kwargs.update(overrides)
        if kwargs["mode"] == "live" and key_env and not kwargs.get("api_key"):
            _check_keyless_endpoints(str(key_env), kwargs["endpoints"])
        return cls(**kwargs)

    # ---- public API --------------------------------------------------------------------------------
    def run(self, requests: Sequence[ChatRequest], desc: str | None = None) -> list[ChatResult]:
        """Sync wrapper of `arun` (works inside a running event loop too, via a helper thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(requests, desc=desc))
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            return ex.submit(asyncio.run, self.arun(requests, desc=desc)).result()

    async def arun(self, requests: Sequence[ChatRequest], desc: str | None = None) -> list[ChatResult]:
        """Results in request order. Failed requests carry `.error`; replay misses raise ReplayMiss."""
        t0 = time.monotonic()
        usage = self.meter.stage(self.stage)
        groups: dict[str, list[int]] = {}
        prepared: dict[str, Prepared] = {}
        for i, req in enumerate(requests):
            if not isinstance(req, ChatRequest):
                raise TypeError(f"request {i} is a {type(req).__name__}, not a ChatRequest")
            try:
                prep = Prepared(req, self.model)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"request {i} (meta={req.meta}) is malformed: {exc}") from exc
            if prep.key in groups:
                groups[prep.key].append(i)
            else:
                groups[prep.key] = [i]
                prepared[prep.key] = prep
        results: list[ChatResult | None] = [None] * len(requests)

        def deliver(key: str, completions: list[Completion], error: str | None, cached: bool) -> None:
            for i in groups[key]:
                results[i] = ChatResult(request=requests[i], completions=completions, error=error, cached=cached,
                                        key=key)

        cache = self.cache
        misses = [key for key in groups if cache is None or key not in cache]
        if misses and self.mode == "replay":
            first = requests[groups[misses[0]][0]]
            raise ReplayMiss(first.template_version, misses[0], str(cache.dir if cache else None),
                             missing=len(misses), total=len(groups))
        usage.requests += len(groups)
        if cache is not None:
            for key in groups:
                hit = cache.get(key)
                if hit is not None:
                    deliver(key, hit, None, True)
                    usage.cache_hits += 1
                    usage.completions += len(hit)
        try:
            if misses:
                await self._call_all(misses, groups, requests, prepared, deliver, desc, hits=len(groups) - len(misses))
        finally:
            if self.cache is not None:
                self.cache.flush()
            usage.wall_seconds += time.monotonic() - t0
        log.info("llm[%s] %s: %d requests (%d cached, %d called, %d errors) in %.1fs",
                 self.stage, desc or "run", len(groups), len(groups) - len(misses), len(misses),
                 sum(1 for k in misses if results[groups[k][0]].error), time.monotonic() - t0)  # type: ignore[union-attr]
        return results  # type: ignore[return-value]

    def usage(self) -> dict[str, dict[str, Any]]:
        """Per stage: requests, cache_hits, calls, retries, errors, tokens, cost_usd, seconds."""
        return self.meter.as_dict()

    def usage_table(self) -> str:
        return format_usage(self.usage())

    def close(self) -> None:
        """Flush the cache and log this client's usage table."""
        log.info("llm usage:\n%s", self.usage_table())
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- calling -----------------------------------------------------------------------------------
    async def _call_all(self, misses, groups, requests, prepared, deliver, desc, hits: int) -> None:
        from tqdm.auto import tqdm

        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0, ttl_dns_cache=300,
                                         enable_cleanup_closed=True)
        bar = tqdm(total=hits + len(misses), initial=hits, desc=desc or f"llm {self.stage}", unit="req",
                   mininterval=1.0, disable=not self.progress, dynamic_ncols=True)
        todo = iter(misses)
        # one worker = one call in flight, except when split_n fans a request out: then a semaphore bounds calls
        slots = asyncio.Semaphore(self.concurrency) if self.split_n else None

        async def worker(session: aiohttp.ClientSession) -> None:
            for key in todo:
                req = requests[groups[key][0]]
                result = await self._call(session, req, prepared[key], slots)
                deliver(key, result.completions, result.error, False)
                bar.update(1)

        try:
            async with aiohttp.ClientSession(connector=connector, headers=headers, json_serialize=json.dumps,
                                             skip_auto_headers=("User-Agent",)) as session:
                workers = [asyncio.ensure_future(worker(session)) for _ in range(min(self.concurrency, len(misses)))]
                try:
                    await asyncio.gather(*workers)
                except BaseException:
                    for w in workers:
                        w.cancel()
                    raise
        finally:
            bar.close()

    def _body(self, prep: Prepared, params: dict[str, Any]) -> bytes:
        body = {k: v for k, v in params.items() if k not in self.drop_params}
        body["model"] = prep.model
        body["messages"] = prep.messages
        body["stream"] = False
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt))
        delay = self._rng.uniform(cap / 2, cap)  # "equal jitter": spread retries, keep a floor
        if retry_after is not None:
            delay = max(delay, min(retry_after, 600.0))
        return delay

    async def _post(self, session: aiohttp.ClientSession, payload: bytes,
                    slots: asyncio.Semaphore | None = None) -> _Answer:
        """One chat call with retries/backoff/failover; raises _Failed with the last error.

        `slots` bounds HTTP calls in flight when one request fans out into several (split_n); the
        wait for a slot happens before the per-call timeout starts.
        """
        usage = self.meter.stage(self.stage)
        assert self.pool is not None
        last_ep: Endpoint | None = None
        error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            async with slots if slots is not None else contextlib.nullcontext():
                ep = self.pool.acquire(avoid=last_ep)
                last_ep = ep
                usage.attempts += 1
                retry_after = None
                t0 = time.monotonic()
                ok: bool | None = False
                try:
                    async with session.post(ep.chat_url, data=payload, timeout=self._timeout) as resp:
                        raw = await resp.read()
                        status = resp.status
                        retry_after = _retry_after(resp.headers.get("Retry-After"))
                    latency = time.monotonic() - t0
                    if status == 200:
                        choices, data = parse_chat_response(raw)
                        ok = True
                        return _Answer(choices, data, ep, latency, attempt + 1)
                    error = f"HTTP {status} from {ep.name}: {raw[:200].decode('utf-8', 'replace')}"
                    if status not in RETRY_STATUS:
                        ok = None
                        hint = " (is the API key env var set?)" if status in (401, 403) else ""
                        raise _Failed(f"{error}{hint}")
                    if status == 429:
                        ok = None  # rate limited, not broken: honour Retry-After, keep it in rotation
                except _Malformed as exc:
                    error = f"malformed response from {ep.name}: {exc}"
                except asyncio.TimeoutError:
                    error = f"timeout after {self.timeout_s:g}s at {ep.name}"
                except aiohttp.ClientError as exc:
                    error = f"connection error at {ep.name}: {exc.__class__.__name__}: {exc}"
                finally:
                    self.pool.release(ep, ok=ok)
            if attempt < self.max_retries:
                usage.retries += 1
                delay = self._delay(attempt, retry_after)
                log.debug("llm retry %d/%d in %.2fs: %s", attempt + 1, self.max_retries, delay, error)
                await asyncio.sleep(delay)
        raise _Failed(f"{error} (gave up after {self.max_retries + 1} attempts)")

    async def _call(self, session: aiohttp.ClientSession, req: ChatRequest, prep: Prepared,
                    slots: asyncio.Semaphore | None = None) -> ChatResult:
        n = int(prep.params.get("n", 1))
        try:
            if self.split_n and n > 1:
                # APIs without `n` (e.g. DeepSeek's): n calls with n=1 and seeds seed, seed+1, ...
                subs = []
                for i in range(n):
                    params = {**prep.params, "n": 1}
                    if params.get("seed") is not None:
                        params["seed"] = int(params["seed"]) + i
                    subs.append(self._body(prep, params))
                outcomes = await asyncio.gather(*(self._post(session, body, slots) for body in subs),
                                                return_exceptions=True)
                for outcome in outcomes:  # wait for all sub-calls, then report the first failure
                    if isinstance(outcome, BaseException):
                        raise outcome
                answers = list(outcomes)  # type: ignore[arg-type]
            else:
                answers = [await self._post(session, self._body(prep, prep.params))]
        except _Failed as exc:
            return self._fail(req, prep.key, str(exc))
        return self._finish(req, prep, answers)

    def _fail(self, req: ChatRequest, key: str, error: str) -> ChatResult:
        self.meter.stage(self.stage).errors += 1
        log.warning("llm request failed (template %s, key %s): %s", req.template_version, key[:12], error)
        return ChatResult(request=req, error=error, key=key)

    def _finish(self, req: ChatRequest, prep: Prepared, answers: list[_Answer]) -> ChatResult:
        key, model, params = prep.key, prep.model, prep.params
        created = round(time.time(), 3)
        completions = []
        totals: dict[str, int] = {}
        for answer in answers:
            tokens = _token_counts(answer.data.get("usage"))
            for name, value in (tokens or {}).items():
                totals[name] = totals.get(name, 0) + value
            for reasoning, text, finish in answer.choices:
                completions.append(Completion(text=text, reasoning=reasoning, finish_reason=finish, provenance={
                    "endpoint": answer.endpoint.name, "model": answer.data.get("model") or model,
                    "requested_model": model, "template_version": req.template_version, "params": params,
                    "seed": params.get("seed"), "tokens": tokens, "latency_s": round(answer.latency, 4),
                    "attempts": answer.attempts, "key": key, "index": len(completions),
                    "response_id": answer.data.get("id"), "created": created,
                }))
        wanted = int(params.get("n", 1))
        if len(completions) != wanted:
            log.warning("llm: asked for n=%d completions, the endpoint returned %d (key %s); keeping what came "
                        "(set llm.split_n=true for APIs without n)", wanted, len(completions), key[:12])
        if self.cache is not None:
            self.cache.put(key, model=model, messages=prep.messages, params=params,
                           template_version=prep.template_version,
                           completions=completions, usage=totals or None, canonical=True)
        usage = self.meter.stage(self.stage)
        usage.calls += len(answers)
        usage.completions += len(completions)
        usage.call_seconds += sum(a.latency for a in answers)
        self.meter.add_tokens(self.stage, totals)
        return ChatResult(request=req, completions=completions, key=key)
