"""`xcoder judge serve`: the judge over HTTP, speaking SandboxFusion's `/run_code`.

Why a server at all: verl's `reward_score.sandbox_fusion`, the `sandbox-fusion` PyPI client and
other stock tools talk to a sandbox over HTTP. This module lets them use our judge unchanged
(`POST /run_code`, `GET /v1/ping`), adds a batch endpoint (one program x many tests, our verdicts)
and `GET /health` (queue depth, counters) for operators.

Design:
- One process, one asyncio loop (uvicorn), one in-process `Judge` that owns the worker processes.
  Each request becomes one blocking `Judge.run` call on a small thread pool; the judge is
  thread-safe and spreads the tests over its workers.
- Backpressure: at most `concurrency + queue_size` requests are admitted (running or waiting);
  beyond that the server answers 503 with `Retry-After` at once, so memory stays bounded.
- Every request awaits its own future, so results cannot be misrouted. A client that vanishes
  while waiting is noticed (ASGI `http.disconnect`): its job is skipped if not yet started, or its
  result dropped if running; nobody else is affected.
- Security: binds loopback by default and then only accepts loopback `Host` headers (blocks DNS
  rebinding from a browser). A non-loopback bind needs `--allow-remote` AND a shared token in the
  environment variable named by `--token-env`; every request must then carry
  `Authorization: Bearer <token>`, otherwise 401.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import hmac
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from xcoder.judge.sandboxfusion import (
    RunCodeRequest,
    RunCodeResponse,
    to_run_code_response,
    unsupported_language_message,
)
from xcoder.judge.types import JudgeTest, Limits, Program, TestResult, Verdict

logger = logging.getLogger(__name__)

_JUDGE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "judge" / "local.yaml"


class ServeRefused(RuntimeError):
    """The server must not start with these settings (e.g. remote bind without a token)."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Knobs of the HTTP layer. Their defaults live in ONE place, the `judge.server` block of
    configs/judge/local.yaml (with a comment per knob): `ServerSettings.defaults(**changes)` reads it."""

    host: str
    port: int
    allow_remote: bool
    token_env: str
    concurrency: int  # requests executing at once; 0 = 2 x judge workers
    queue_size: int  # admitted requests waiting beyond `concurrency`; more -> 503
    max_queued_mb: float  # total code + stdin + tests held by admitted requests; more -> 503
    overload_status: int  # HTTP status when full
    max_request_mb: float  # request body cap -> 413
    max_batch_tests: int  # tests per batch request -> 400 beyond
    max_time_s: float  # largest per-test wall limit a client may ask for -> 400 beyond
    default_memory_mb: int  # used when /run_code says memory_limit_MB=-1 (SandboxFusion's "none")
    max_memory_mb: int  # largest memory limit a client may ask for -> 400 beyond

    def __post_init__(self) -> None:
        if self.overload_status not in (429, 503, 504):
            raise ValueError(f"judge.server.overload_status must be 429, 503 or 504, got {self.overload_status}")
        if self.queue_size < 0 or self.concurrency < 0 or not 0 <= self.port < 65536:
            raise ValueError(
                f"judge.server: need queue_size >= 0, concurrency >= 0, 0 <= port < 65536 "
                f"(got {self.queue_size}, {self.concurrency}, {self.port})"
            )
        if min(self.max_request_mb, self.max_queued_mb, self.max_time_s) <= 0 or min(
            self.max_batch_tests, self.default_memory_mb, self.max_memory_mb
        ) <= 0:
            raise ValueError("judge.server caps (max_*, default_memory_mb) must be positive")
        if self.default_memory_mb > self.max_memory_mb:
            raise ValueError(
                f"judge.server.default_memory_mb={self.default_memory_mb} exceeds max_memory_mb={self.max_memory_mb}"
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ServerSettings:
        """Build from the `judge.server` config block; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(cfg.keys()) - names
        if unknown:
            raise ValueError(f"unknown judge.server keys: {sorted(unknown)}")
        return cls(**{k: cfg[k] for k in cfg.keys()})

    @classmethod
    def defaults(cls, **changes: Any) -> ServerSettings:
        """The `judge.server` config defaults, with `changes` on top."""
        return dataclasses.replace(_config_defaults(), **changes)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerSettings:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(settings: ServerSettings, environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token the server will require, or None on a loopback bind.

    Raises ServeRefused (with the fix in the message) for a non-loopback bind without
    `allow_remote` or without a non-empty token in `settings.token_env`.
    """
    environ = os.environ if environ is None else environ
    if is_loopback(settings.host):
        return None
    if not settings.allow_remote:
        raise ServeRefused(
            f"refusing to bind non-loopback host {settings.host!r}: programs run by this server are "
            "untrusted code; pass --allow-remote and set a shared token in the environment variable "
            f"{settings.token_env} (clients send 'Authorization: Bearer <token>')"
        )
    token = environ.get(settings.token_env, "")
    if not token.strip():
        raise ServeRefused(
            f"refusing to bind {settings.host!r} with --allow-remote: environment variable "
            f"{settings.token_env} is empty or unset; set it to a shared secret token"
        )
    return token.strip()


class Overloaded(Exception):
    """The server's admission limit is reached; the client should retry later (HTTP 503)."""


class ServerStats:
    """Thread-safe counters exposed by /health."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.latency_sum_s = 0.0
        self.latency_max_s = 0.0

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def record(self, results: list[TestResult], latency_s: float) -> None:
        with self._lock:
            self.counters["completed"] += 1
            self.counters["tests"] += len(results)
            for r in results:
                self.verdicts[r.verdict.value] += 1
            self.latency_sum_s += latency_s
            self.latency_max_s = max(self.latency_max_s, latency_s)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            done = self.counters["completed"]
            return {
                **dict(self.counters),
                "verdicts": dict(self.verdicts),
                "latency_s": {
                    "mean": round(self.latency_sum_s / done, 6) if done else 0.0,
                    "max": round(self.latency_max_s, 6),
                },
            }


class Dispatcher:
    """Bounded admission in front of a thread pool that calls the blocking judge.

    `admitted` counts jobs handed to the pool and not finished yet (waiting or running); it is
    decremented by the job's own completion, so a cancelled HTTP handler cannot make the server
    admit more work than its bound.
    """

    def __init__(self, concurrency: int, queue_size: int, stats: ServerStats, max_queued_bytes: int = 1 << 62) -> None:
        if concurrency < 1 or queue_size < 0:
            raise ValueError(f"need concurrency >= 1 and queue_size >= 0, got {concurrency}, {queue_size}")
        self.concurrency = concurrency
        self.capacity = concurrency + queue_size
        self.max_queued_bytes = max_queued_bytes
        self._admitted_bytes = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="judge-http")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._stats = stats

    @property
    def depth(self) -> dict[str, int]:
        with self._lock:
            return {
                "capacity": self.capacity,
                "concurrency": self.concurrency,
                "running": self._running,
                "waiting": self._admitted - self._running,
                "admitted_bytes": self._admitted_bytes,
            }

    def submit(self, fn: Callable[[], Any], gone: threading.Event, size_bytes: int = 0) -> concurrent.futures.Future:
        """Queue `fn`; raises Overloaded when full (by count, or by bytes held unless the queue is
        empty, so one large request can always run). `gone` set before start -> job skipped."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise Overloaded()
            if self._admitted and self._admitted_bytes + size_bytes > self.max_queued_bytes:
                raise Overloaded()
            self._admitted += 1
            self._admitted_bytes += size_bytes

        def job() -> Any:
            if gone.is_set():
                self._stats.bump("abandoned_before_start")
                return None
            with self._lock:
                self._running += 1
            try:
                return fn()
            finally:
                with self._lock:
                    self._running -= 1

        def release(_: concurrent.futures.Future) -> None:
            with self._lock:
                self._admitted -= 1
                self._admitted_bytes -= size_bytes

        future = self._pool.submit(job)
        future.add_done_callback(release)
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# ----- batch endpoint models (our own wire format: mirrors the Python API) -----------------------


class ProgramModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    language: str = "python"


class TestModel(BaseModel):
    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid")
    input: str = ""
    output: str | None = None
    code: str | None = None


class LimitsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_s: float = Limits.time_s
    cpu_s: float | None = Limits.cpu_s
    memory_mb: int | None = Limits.memory_mb
    output_bytes: int = Limits.output_bytes
    max_processes: int = Limits.max_processes
    file_size_bytes: int = Limits.file_size_bytes
    open_files: int = Limits.open_files


class BatchRequest(BaseModel):
    """One program on many tests, exactly like `Judge.run`."""

    model_config = ConfigDict(extra="forbid")
    program: ProgramModel
    tests: list[TestModel]
    kind: Literal["stdio", "call", "assert"] = "stdio"
    fn_name: str | None = None
    compare: str = "strip"
    limits: LimitsModel = Field(default_factory=LimitsModel)
    stop_on_first_failure: bool = False


class HTTPProblem(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _check_limits(limits: Limits, settings: ServerSettings) -> None:
    if not 0 < limits.time_s <= settings.max_time_s:
        raise HTTPProblem(400, f"time limit {limits.time_s} s outside (0, {settings.max_time_s}] (server max_time_s)")
    if limits.cpu_s is not None and not 0 < limits.cpu_s <= settings.max_time_s:
        raise HTTPProblem(400, f"cpu limit {limits.cpu_s} s outside (0, {settings.max_time_s}] (server max_time_s)")
    if limits.memory_mb is None or not 0 < limits.memory_mb <= settings.max_memory_mb:
        raise HTTPProblem(
            400, f"memory limit {limits.memory_mb} MB outside (0, {settings.max_memory_mb}] (server max_memory_mb)"
        )


class _ASGIGuard:
    """Pure-ASGI middleware: Host allow-list on loopback binds, and a request-body size cap."""

    def __init__(self, app: Any, *, allowed_hosts: frozenset[str] | None, max_body: int) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body

    @staticmethod
    async def _reply(send: Any, status: int, detail: str) -> None:
        import json

        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed_hosts is not None:
            host = headers.get("host", "")
            name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
            if name.lower() not in self.allowed_hosts:
                return await self._reply(send, 400, f"Host header {host!r} not allowed on a loopback-only server")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await self._reply(send, 413, f"request body {length} bytes exceeds the server cap {self.max_body}")
        seen = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge()
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._reply(send, 413, f"request body exceeds the server cap {self.max_body} bytes")


class _BodyTooLarge(Exception):
    pass


def _judge_info(judge: Any, attr: str, fallback: Any) -> Any:
    value = getattr(judge, attr, None)
    return fallback if value is None else value


def create_app(judge: Any, settings: ServerSettings | None = None, *, token: str | None = None) -> Any:
    """The ASGI app around an already-built judge (anything with the `Judge.run` signature).

    `token`: when set, every request needs `Authorization: Bearer <token>` (401 otherwise). Use
    `resolve_token(settings)` to derive it from the bind rules. `settings`: the config defaults if None.
    """
    settings = settings or ServerSettings.defaults()
    workers = int(_judge_info(judge, "workers", 0)) or (os.cpu_count() or 1)
    concurrency = settings.concurrency or max(2, 2 * workers)
    stats = ServerStats()
    dispatcher = Dispatcher(concurrency, settings.queue_size, stats, int(settings.max_queued_mb * 1024 * 1024))
    started_at = time.time()

    async def require_token(request: Request) -> None:
        if token is None:
            return
        supplied = request.headers.get("authorization", "")
        scheme, _, value = supplied.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            stats.bump("unauthorized")
            raise HTTPProblem(401, "missing or wrong 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Any):
        yield
        dispatcher.close()

    app = FastAPI(
        title="xcoder judge",
        description="Sandbox judge with a SandboxFusion-compatible /run_code",
        dependencies=[Depends(require_token)],
        lifespan=lifespan,
    )
    app.state.dispatcher = dispatcher
    app.state.stats = stats

    @app.exception_handler(HTTPProblem)
    async def _problem(_: Request, exc: HTTPProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    async def execute(
        request: Request, fn: Callable[[], list[TestResult]], size_bytes: int, n_tests: int
    ) -> list[TestResult] | None:
        """Run `fn` on the pool; None when the client went away (nobody to answer). A judge crash
        becomes SE for every test (the judge's fault, never the program's)."""
        stats.bump("requests")
        gone = threading.Event()
        try:
            cf = dispatcher.submit(fn, gone, size_bytes)
        except Overloaded:
            stats.bump("rejected_overload")
            raise HTTPProblem(
                settings.overload_status,
                f"judge queue full ({dispatcher.capacity} requests admitted); retry later",
                {"Retry-After": "1"},
            ) from None
        future = asyncio.wrap_future(cf)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception not retrieved"
        watcher = asyncio.ensure_future(_wait_disconnect(request))
        t0 = time.perf_counter()
        try:
            done, _ = await asyncio.wait({future, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not watcher.done():
                watcher.cancel()
        if future not in done:
            gone.set()
            stats.bump("client_gone")
            return None
        try:
            results = future.result()
        except ValueError as exc:  # the judge rejected the request's arguments (e.g. a compare mode)
            stats.bump("bad_request")
            raise HTTPProblem(400, str(exc)) from None
        except Exception as exc:  # the judge itself failed: a sandbox error, not the program's fault
            logger.exception("judge failed on a request")
            stats.bump("judge_exceptions")
            reason = f"judge failed: {type(exc).__name__}: {exc}"
            return [TestResult(index=i, verdict=Verdict.SE, message=reason) for i in range(n_tests)]
        stats.record(results, time.perf_counter() - t0)
        return results

    @app.get("/v1/ping")
    async def ping() -> JSONResponse:
        # SandboxFusion answers the JSON string "pong"
        return JSONResponse("pong")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "workers": workers,
            "isolation": str(_judge_info(judge, "isolation", "unknown")),
            "queue": dispatcher.depth,
            "counters": stats.snapshot(),
            "uptime_s": round(time.time() - started_at, 3),
            "languages": ["python", "cpp"],
        }

    @app.post("/run_code", response_model=RunCodeResponse, response_model_exclude_none=False)
    async def run_code(body: RunCodeRequest, request: Request) -> Any:
        reason = unsupported_language_message(body.language)
        if reason:
            stats.bump("bad_request")
            raise HTTPProblem(400, reason)
        if body.files or body.fetch_files:
            stats.bump("bad_request")
            raise HTTPProblem(400, "files / fetch_files are not supported by the xcoder judge (send them empty)")
        memory = body.memory_limit_MB if body.memory_limit_MB > 0 else settings.default_memory_mb
        limits = Limits(time_s=float(body.run_timeout), memory_mb=int(memory))
        _check_limits(limits, settings)
        program = Program(body.code, language=body.language)
        tests = [JudgeTest(input=body.stdin or "")]
        results = await execute(
            request,
            lambda: judge.run(program, tests, kind="stdio", compare="exact", limits=limits),
            len(body.code) + len(body.stdin or ""),
            1,
        )
        if results is None:
            return PlainTextResponse("client closed request", status_code=499)
        if len(results) != 1:
            stats.bump("judge_exceptions")
            results = [TestResult(index=0, verdict=Verdict.SE,
                                  message=f"judge returned {len(results)} results for 1 test")]
        return to_run_code_response(results[0], body.language)

    @app.post("/v1/judge/batch")
    async def judge_batch(body: BatchRequest, request: Request) -> Any:
        reason = unsupported_language_message(body.program.language)
        if reason:
            stats.bump("bad_request")
            raise HTTPProblem(400, reason)
        if not body.tests:
            raise HTTPProblem(400, "tests must not be empty")
        if len(body.tests) > settings.max_batch_tests:
            raise HTTPProblem(400,
                              f"{len(body.tests)} tests exceed the server cap "
                              f"max_batch_tests={settings.max_batch_tests}")
        if body.kind == "call" and not body.fn_name:
            raise HTTPProblem(400, "kind='call' needs fn_name")
        limits = Limits(**body.limits.model_dump())
        _check_limits(limits, settings)
        program = Program(body.program.code, language=body.program.language)
        tests = [JudgeTest(input=t.input, output=t.output, code=t.code) for t in body.tests]
        results = await execute(
            request,
            lambda: judge.run(
                program,
                tests,
                kind=body.kind,
                fn_name=body.fn_name,
                compare=body.compare,
                limits=limits,
                stop_on_first_failure=body.stop_on_first_failure,
            ),
            len(program.code) + sum(len(t.input) + len(t.output or "") + len(t.code or "") for t in tests),
            len(tests),
        )
        if results is None:
            return PlainTextResponse("client closed request", status_code=499)
        passed = sum(r.passed for r in results)
        return {
            "results": [r.to_json() for r in results],
            "passed": passed,
            "total": len(tests),
            "accepted": passed == len(tests) and len(results) == len(tests),
        }

    allowed = None
    if is_loopback(settings.host):
        allowed = frozenset({"127.0.0.1", "localhost", "[::1]", "::1", settings.host.lower()})
    return _ASGIGuard(app, allowed_hosts=allowed, max_body=int(settings.max_request_mb * 1024 * 1024))


async def _wait_disconnect(request: Any) -> None:
    """Return when the client disconnects (the body has already been read by FastAPI)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


# ----- running it ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _config_defaults() -> ServerSettings:
    """Defaults from `configs/judge/local.yaml` (`server:` block), the single source of truth."""
    try:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(_JUDGE_CONFIG)
        return ServerSettings.from_config(OmegaConf.to_container(cfg.server))  # type: ignore[arg-type]
    except Exception as exc:  # a broken config file must be loud, not silently replaced
        raise RuntimeError(f"cannot read judge.server defaults from {_JUDGE_CONFIG}: {exc}") from exc


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `xcoder judge serve` (defaults from the `judge.server` config block)."""
    d = _config_defaults()
    parser.add_argument("--host", default=d.host,
                        help=f"bind address (default {d.host}; non-loopback needs --allow-remote)")
    parser.add_argument("--port", type=int, default=d.port, help=f"TCP port (default {d.port}; 0 = any free port)")
    parser.add_argument("--workers", type=int, default=None,
                        help="judge worker processes; 0 = all CPU cores (default: judge.workers from the config)")
    parser.add_argument("--isolation", default=None,
                        help="auto (strongest available, fail closed) | bwrap | none (UNSAFE) (default: "
                        "judge.isolation)")
    parser.add_argument("--allow-remote", dest="allow_remote", action="store_true", default=d.allow_remote,
                        help="permit a non-loopback --host (requires the token env var)")
    parser.add_argument("--token-env", dest="token_env", default=d.token_env,
                        help=f"env var holding the shared bearer token for remote binds (default {d.token_env})")
    parser.add_argument("--concurrency", type=int, default=d.concurrency,
                        help="requests executing at once; 0 = 2 x judge workers")
    parser.add_argument("--queue-size", dest="queue_size", type=int, default=d.queue_size,
                        help=f"requests admitted beyond --concurrency before answering 503 (default {d.queue_size})")
    parser.add_argument("--max-queued-mb", dest="max_queued_mb", type=float, default=d.max_queued_mb,
                        help="bytes of code/stdin/tests admitted requests may hold before answering 503")
    parser.add_argument("--overload-status", dest="overload_status", type=int, choices=(429, 503, 504),
                        default=d.overload_status,
                        help="HTTP status when the queue is full (504: verl's sandbox_fusion client retries only 504)")
    parser.add_argument("--max-request-mb", dest="max_request_mb", type=float, default=d.max_request_mb)
    parser.add_argument("--max-batch-tests", dest="max_batch_tests", type=int, default=d.max_batch_tests)
    parser.add_argument("--max-time-s", dest="max_time_s", type=float, default=d.max_time_s,
                        help="largest per-test time limit a client may request")
    parser.add_argument("--default-memory-mb", dest="default_memory_mb", type=int, default=d.default_memory_mb,
                        help="memory limit when /run_code sends memory_limit_MB=-1")
    parser.add_argument("--max-memory-mb", dest="max_memory_mb", type=int, default=d.max_memory_mb)
    parser.add_argument("--log-level", dest="log_level", default="warning", help="uvicorn log level")


def _url_host(host: str) -> str:
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def _bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: Any, log_level: str, settings: ServerSettings) -> Any:
    import uvicorn

    # connections beyond admitted work + headroom for /health get uvicorn's own 503 before their
    # bodies are read, so a flood cannot buffer unbounded request bodies
    limit = settings.queue_size + max(settings.concurrency, 64) + 64
    config = uvicorn.Config(
        app, log_level=log_level, timeout_keep_alive=30, access_log=False, lifespan="on", limit_concurrency=limit
    )
    return uvicorn.Server(config)


def _build_judge(args: argparse.Namespace) -> Any:
    """The Judge from the composed `judge` config group, with --workers/--isolation on top."""
    from xcoder.config import compose
    from xcoder.judge.factory import judge_from_config

    overrides = []
    if args.workers is not None:
        overrides.append(f"judge.workers={int(args.workers)}")
    if args.isolation is not None:
        overrides.append(f"judge.isolation={args.isolation}")
    return judge_from_config(compose(overrides), mode="local")


def run_server(args: argparse.Namespace) -> int:
    """Entry of `xcoder judge serve`: validate the bind, build the judge, serve until SIGINT/SIGTERM."""
    settings = ServerSettings.from_args(args)
    try:
        token = resolve_token(settings)
    except ServeRefused as exc:
        print(f"xcoder judge serve: {exc}", file=sys.stderr)
        return 2
    try:
        judge = _build_judge(args)
    except Exception as exc:  # isolation unavailable (fail closed), bad config: say which and stop
        print(f"xcoder judge serve: cannot start the judge: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            sock = _bind_socket(settings.host, settings.port)
        except OSError as exc:
            print(f"xcoder judge serve: cannot bind {settings.host}:{settings.port}: {exc}", file=sys.stderr)
            return 2
        host, port = sock.getsockname()[:2]
        app = create_app(judge, settings, token=token)
        print(
            f"xcoder judge serving on http://{_url_host(settings.host)}:{port} "
            f"(isolation={getattr(judge, 'isolation', '?')}, "
            f"auth={'bearer token' if token else 'none, loopback only'}); POST /run_code, POST /v1/judge/batch, GET "
            f"/health",
            flush=True,
        )
        server = _uvicorn_server(app, args.log_level, settings)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal against the
        # handler that was installed before it; make that ours, so the judge's workers are closed
        # (no leftover sandboxes) and the exit status is 0 instead of death by signal.
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[sock])
        except _Stop:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        judge.close()
    return 0


class _Stop(Exception):
    """Raised by our signal handler after uvicorn's graceful shutdown."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop(signum)


@contextlib.contextmanager
def serve_in_background(
    judge: Any, settings: ServerSettings | None = None, *, token: str | None = None
) -> Iterator[str]:
    """Serve `judge` from a thread of this process; yields the base URL (for tests and notebooks).

    The caller owns the judge. The server is stopped (and its pool drained) on exit. `settings`:
    the config defaults on any free port if None.
    """
    settings = settings or ServerSettings.defaults(port=0)
    sock = _bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    server = _uvicorn_server(create_app(judge, settings, token=token), "warning", settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="judge-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("judge server thread failed to start")
        time.sleep(0.01)
    try:
        yield f"http://{_url_host(host)}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
