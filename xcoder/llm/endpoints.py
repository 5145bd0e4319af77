"""A fleet of OpenAI-compatible endpoints: least-loaded choice, failure cooldown, failover.

Load spreading picks the healthy endpoint with the fewest requests in flight (ties rotate), which
keeps a fleet of vLLM servers evenly busy even when their speeds differ. An endpoint that fails
(connection error, timeout, 5xx) cools down for an exponentially growing time; a retry avoids the
endpoint that just failed whenever another one is available.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The URL without user:password@ (credentials must never reach provenance or logs)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclasses.dataclass
class Endpoint:
    base_url: str
    inflight: int = 0
    failures: int = 0
    down_until: float = 0.0
    served: int = 0

    chat_url: str = ""
    name: str = ""  # the URL as shown in provenance/logs (credentials stripped)

    def __post_init__(self) -> None:
        self.chat_url = self.base_url.rstrip("/") + "/chat/completions"
        self.name = redact_url(self.base_url.rstrip("/"))


class EndpointPool:
    def __init__(self, urls: Sequence[str], *, cooldown_base_s: float = 1.0, cooldown_max_s: float = 30.0):
        urls = [str(u).strip() for u in urls if str(u).strip()]
        if not urls:
            raise ValueError("llm.endpoints is empty: list at least one OpenAI-compatible base URL (…/v1)")
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"llm.endpoints: {redact_url(url)!r} is not an http(s) URL")
        self.endpoints = [Endpoint(u) for u in urls]
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_max_s = cooldown_max_s
        self._turn = 0

    def acquire(self, avoid: Endpoint | None = None) -> Endpoint:
        now = time.monotonic()
        eps = self.endpoints
        healthy = [e for e in eps if e.down_until <= now]
        pool = [e for e in healthy if e is not avoid] or healthy or [e for e in eps if e is not avoid] or eps
        if not healthy:  # everything cooling down: take the one that recovers first
            pool = [min(pool, key=lambda e: e.down_until)]
        self._turn += 1
        n = len(pool)
        best = min(range(n), key=lambda i: (pool[i].inflight, (i - self._turn) % n))
        ep = pool[best]
        ep.inflight += 1
        return ep

    def release(self, ep: Endpoint, *, ok: bool | None) -> None:
        """ok=True success, False endpoint-side failure (cool it down), None neutral (e.g. a 4xx)."""
        ep.inflight -= 1
        if ok:
            ep.failures = 0
            ep.served += 1
        elif ok is False:
            ep.failures += 1
            delay = min(self.cooldown_max_s, self.cooldown_base_s * 2 ** (ep.failures - 1))
            ep.down_until = time.monotonic() + delay

    def stats(self) -> dict[str, int]:
        return {e.name: e.served for e in self.endpoints}
