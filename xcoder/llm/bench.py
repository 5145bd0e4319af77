"""Client throughput benchmark: `python -m xcoder.llm.bench [--n 5000] [--concurrency 256]`.

Starts the fake OpenAI-compatible server (xcoder.llm.fake_server) in a subprocess on 127.0.0.1 —
instant answers unless `--delay` — then measures, in the same run so the ratios hold on a noisy
machine:
  1. sequential calls (concurrency 1), the baseline;
  2. the client at `--concurrency` (cache on, as in a real run: every answer is appended + fsync'd);
  3. the same requests again (served from the cache, zero HTTP calls);
  4. the `openai` SDK (AsyncOpenAI + a semaphore at the same concurrency, no cache), for the
     transport choice (skip with --no-sdk).
Prints requests/s, the ratio to sequential, CPU milliseconds per request of the client and of the
server (robust to a busy machine, where wall-clock rates only show the share of CPU we got), and the
peak RSS of this process (the client side).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from xcoder.llm.client import LLMClient
from xcoder.llm.types import ChatRequest


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Meter:
    """Wall time plus CPU seconds of this process (the client) and of the server process."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def __enter__(self) -> _Meter:
        self.t0, self.c0, self.s0 = time.perf_counter(), _cpu_self(), _cpu_of(self.server_pid)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.client_cpu = _cpu_self() - self.c0
        self.server_cpu = _cpu_of(self.server_pid) - self.s0

    def row(self, n: int, **extra: Any) -> dict[str, Any]:
        return {"requests": n, "seconds": round(self.seconds, 3), "req_per_s": round(n / self.seconds, 1),
                "client_cpu_ms_per_req": round(1000 * self.client_cpu / n, 3),
                "server_cpu_ms_per_req": round(1000 * self.server_cpu / n, 3), **extra}


def _requests(n: int, tag: str) -> list[ChatRequest]:
    return [ChatRequest(messages=[{"role": "system",
                                   "content": "You are a professional competitive programming problem setter."},
                                  {"role": "user",
                                   "content": f"{tag} request {i}: write a problem about trees and DP."}],
                        params={"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0, "max_tokens": 256,
                                "seed": i},
                        template_version="bench@000000000000", meta={"i": i}) for i in range(n)]


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "xcoder.llm.fake_server", "--port", "0", "--delay", str(delay)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("URL "):
        proc.kill()
        raise RuntimeError(f"fake server did not start (said {line!r})")
    return proc, line.split()[1]


def _measure(client: LLMClient, reqs: list[ChatRequest], server_pid: int) -> dict[str, Any]:
    with _Meter(server_pid) as meter:
        results = client.run(reqs)
    errors = sum(1 for r in results if r.error)
    if errors:
        raise RuntimeError(f"{errors} benchmark requests failed, e.g. {next(r.error for r in results if r.error)}")
    return meter.row(len(reqs), cached=sum(r.cached for r in results))


async def _sdk_run(url: str, reqs: list[ChatRequest], concurrency: int) -> None:
    import httpx
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0,
                         http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)))
    sem = asyncio.Semaphore(concurrency)

    async def one(req: ChatRequest) -> None:
        async with sem:
            params = dict(req.params)
            extra = {k: params.pop(k) for k in ("top_k", "min_p") if k in params}
            await client.chat.completions.create(model="fake-model", messages=req.messages, extra_body=extra, **params)

    await asyncio.gather(*(one(r) for r in reqs))
    await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="requests for the concurrent runs")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--sequential", type=int, default=300, help="requests for the sequential baseline")
    parser.add_argument("--delay", type=float, default=0.0, help="server think time per request (0 = instant)")
    parser.add_argument("--sdk-n", type=int, default=2000, help="requests for the openai-SDK comparison")
    parser.add_argument("--no-sdk", action="store_true")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    proc, url = start_server(args.delay)
    rows: dict[str, Any] = {"n": args.n, "concurrency": args.concurrency, "delay_s": args.delay,
                            "cpus": os.cpu_count(), "rss_start_mb": round(_rss_mb(), 1)}
    try:
        with tempfile.TemporaryDirectory(prefix="xcoder-llm-bench-") as tmp:
            seq = LLMClient([url], "fake-model", concurrency=1, cache_dir=os.path.join(tmp, "seq"), progress=False)
            LLMClient([url], "fake-model", concurrency=4, progress=False).run(_requests(20, "warmup"))
            rows["sequential"] = _measure(seq, _requests(args.sequential, "seq"), proc.pid)
            conc = LLMClient([url], "fake-model", concurrency=args.concurrency, cache_dir=os.path.join(tmp, "conc"),
                             progress=False)
            reqs = _requests(args.n, "conc")
            rows["concurrent"] = _measure(conc, reqs, proc.pid)
            rows["concurrent"]["peak_rss_mb"] = round(_peak_rss_mb(), 1)
            rerun = LLMClient([url], "fake-model", concurrency=args.concurrency, cache_dir=os.path.join(tmp, "conc"),
                              progress=False)
            rows["cached_rerun"] = _measure(rerun, reqs, proc.pid)
            if not args.no_sdk:
                sdk_reqs = _requests(args.sdk_n, "sdk")
                with _Meter(proc.pid) as meter:
                    asyncio.run(_sdk_run(url, sdk_reqs, args.concurrency))
                rows["openai_sdk"] = meter.row(len(sdk_reqs))
    finally:
        proc.terminate()
        proc.wait(10)
    rows["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    base = rows["sequential"]["req_per_s"]
    print(f"xcoder.llm.bench: fake server delay {args.delay}s, {os.cpu_count()} CPUs (client and server share them)")
    print(f"{'run':<22}{'requests':>10}{'seconds':>10}{'req/s':>10}{'x sequential':>14}"
          f"{'client CPU ms/req':>19}{'server CPU ms/req':>19}")
    for name in ("sequential", "concurrent", "cached_rerun", "openai_sdk"):
        if name in rows:
            r = rows[name]
            label = f"{name} (c={args.concurrency})" if name in ("concurrent", "openai_sdk") else name
            print(f"{label:<22}{r['requests']:>10}{r['seconds']:>10}{r['req_per_s']:>10}{r['req_per_s'] / base:>14.1f}"
                  f"{r['client_cpu_ms_per_req']:>19}{r['server_cpu_ms_per_req']:>19}")
    conc = rows["concurrent"]
    print(f"client CPU capacity (1 core, from CPU time): {1000 / conc['client_cpu_ms_per_req']:.0f} req/s; "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(f"client peak RSS: {rows['peak_rss_mb']} MB (start {rows['rss_start_mb']} MB; "
          f"after the concurrent run {rows['concurrent']['peak_rss_mb']} MB)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
