"""A fake OpenAI-compatible chat server on 127.0.0.1, for tests and the client benchmark.

Faults are injected per prompt with directives in the last message's text, so they are
deterministic whatever the concurrency (counted per distinct prompt, i.e. per attempt):
  [[fail:429x2]]        first 2 attempts answer HTTP 429 (any status works: 500, 503, 400, ...)
  [[retry_after:0.2]]   send `Retry-After: 0.2` with those failures
  [[slow:5x1]]          first attempt sleeps 5 s before answering (drives client timeouts)
  [[malformed:x1]]      first attempt answers 200 with a body that is not JSON
  [[think]]             answer "<think>...</think>final"; [[reasoning_field]] uses reasoning_content
Server-wide: `delay_s` before every answer; `responder` (`--responder module:function`), a function
`(prompt, body, i) -> str` that writes choice i's text instead of the echo (the synthesis scale
benchmark answers each SynthSmith prompt with realistic content this way); `hash_prompts`
(`--hash-prompts`) keys the per-prompt counts by a digest, so a long run's stats stay small.
`GET /_stats` returns request counts, the maximum number of requests in flight at once and
per-prompt attempt counts (`repeated`: attempts beyond the first, summed); `POST /_reset` clears them.

Run standalone: `python -m xcoder.llm.fake_server [MODEL] --port 0 [--delay 0.01]` prints `URL http://...`
(other `vllm serve` flags are ignored, so it can stand in for vLLM in scripts/serve_vllm.sh tests).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import importlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

_DIRECTIVE = re.compile(r"\[\[(\w+)(?::([^\]]*))?\]\]")


def _times(arg: str | None) -> tuple[str, int]:
    """'429x2' -> ('429', 2); 'x1' -> ('', 1); '5' -> ('5', 1 << 30)."""
    arg = arg or ""
    if "x" in arg:
        value, _, count = arg.rpartition("x")
        return value, int(count)
    return arg, 1 << 30


class FakeState:
    def __init__(self, delay_s: float = 0.0, model: str = "fake-model", *,
                 responder: Callable[[str, dict[str, Any], int], str] | None = None, hash_prompts: bool = False):
        self.delay_s = delay_s
        self.model = model
        self.responder = responder
        self.hash_prompts = hash_prompts
        self.reset()

    def prompt_key(self, prompt: str) -> str:
        """The per-prompt count key (hashed mode: prompt + seed, so distinct samples are not repeats)."""
        return hashlib.sha1(prompt.encode("utf-8")).hexdigest() if self.hash_prompts else prompt

    def reset(self) -> None:
        self.requests = 0
        self.inflight = 0
        self.max_inflight = 0
        self.per_prompt: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.body_keys: dict[str, list[str]] = {}  # prompt -> sorted top-level keys of its last request body

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "inflight": self.inflight, "max_inflight": self.max_inflight,
                "distinct_prompts": len(self.per_prompt), "repeated": sum(c - 1 for c in self.per_prompt.values()),
                "per_prompt": {} if self.hash_prompts else dict(self.per_prompt),
                "statuses": {str(k): v for k, v in self.statuses.items()}, "body_keys": dict(self.body_keys)}


def make_app(state: FakeState) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        state.requests += 1
        state.inflight += 1
        state.max_inflight = max(state.max_inflight, state.inflight)
        try:
            return await _answer(request)
        finally:
            state.inflight -= 1

    async def _answer(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            messages = body["messages"]
            prompt = str(messages[-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            state.statuses[400] += 1
            return web.json_response({"error": {"message": "bad request body"}}, status=400)
        key = state.prompt_key(prompt + f"\x00{body.get('seed')}" if state.hash_prompts else prompt)
        state.per_prompt[key] += 1
        if not state.hash_prompts:
            state.body_keys[prompt] = sorted(body)
        attempt = state.per_prompt[key]
        directives = {name: arg for name, arg in _DIRECTIVE.findall(prompt)}
        delay = state.delay_s
        if "slow" in directives:
            secs, times = _times(directives["slow"])
            if attempt <= times:
                delay += float(secs)
        if delay:
            await asyncio.sleep(delay)
        if "fail" in directives:
            status, times = _times(directives["fail"])
            if attempt <= times:
                headers = {"Retry-After": directives["retry_after"]} if "retry_after" in directives else None
                state.statuses[int(status)] += 1
                return web.json_response({"error": {"message": f"injected {status}"}}, status=int(status),
                                         headers=headers)
        if "malformed" in directives and attempt <= _times(directives["malformed"])[1]:
            state.statuses[200] += 1
            return web.Response(body=b'{"choices": [ {"message": oops', content_type="application/json")
        n = int(body.get("n") or 1)
        seed = body.get("seed")
        choices = []
        for i in range(n):
            answer = state.responder(prompt, body, i) if state.responder else f"echo[{i}] seed={seed}: {prompt[:120]}"
            message: dict[str, Any] = {"role": "assistant", "content": answer}
            if "think" in directives:
                message["content"] = f"<think>thinking about {i}</think>{answer}"
            if "reasoning_field" in directives:
                message["reasoning_content"] = f"reasoning {i}"
            choices.append({"index": i, "message": message, "finish_reason": "stop"})
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = sum(len(c["message"]["content"]) // 4 for c in choices) if state.responder else 7 * n
        state.statuses[200] += 1
        return web.json_response({
            "id": f"chatcmpl-{state.requests}", "object": "chat.completion", "model": body.get("model") or state.model,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": state.model, "object": "model"}]})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(state.stats())

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    return app


class FakeOpenAIServer:
    """The fake server on a background thread (own event loop), bound to 127.0.0.1:<free port>."""

    def __init__(self, delay_s: float = 0.0, port: int = 0):
        self.state = FakeState(delay_s)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._runner = web.AppRunner(make_app(self.state), access_log=None)
                self._loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
                self._loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            except BaseException as exc:  # surface bind errors to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="fake-model", help="model name reported by /v1/models")
    parser.add_argument("--model", dest="model_flag", help="same as the positional model (api_server style)")
    parser.add_argument("--served-model-name", dest="served_name")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument("--responder", help="module:function answering (prompt, body, i) -> text instead of the echo")
    parser.add_argument("--hash-prompts", action="store_true", help="count attempts per prompt digest (long runs)")
    # `vllm serve` flags are accepted and ignored, so scripts/serve_vllm.sh can be tested with this server
    args, _ignored = parser.parse_known_args(argv)
    responder = None
    if args.responder:
        module, _, func = args.responder.partition(":")
        responder = getattr(importlib.import_module(module), func)
    state = FakeState(args.delay, model=args.served_name or args.model_flag or args.model, responder=responder,
                      hash_prompts=args.hash_prompts)

    async def run() -> None:
        runner = web.AppRunner(make_app(state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port, backlog=4096)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"URL http://{args.host}:{port}/v1", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
