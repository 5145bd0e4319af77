"""The records that cross the LLM client's boundary: a request, its completions, its result.

They are plain dataclasses (not pydantic) because hundreds of thousands of them are built per
synthesis run and construction cost shows up directly in client throughput.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class ChatRequest:
    """One chat-completions call: messages + sampling params (incl. `n`, `seed`) + template version.

    `model=None` means the client's configured model. `meta` is the caller's bookkeeping (task ids,
    ...): echoed back on the result, never sent, never part of the cache key.
    """

    messages: list[dict[str, Any]]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    template_version: str = ""
    model: str | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Completion:
    """One sampled answer: final text with reasoning split out, plus where/how it was produced.

    `provenance` holds endpoint, model, template_version, params, seed, tokens (usage of the whole
    HTTP response, shared by its `n` completions), latency_s, attempts, key, index, created.
    """

    text: str
    reasoning: str = ""
    finish_reason: str | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "reasoning": self.reasoning, "finish_reason": self.finish_reason,
                "provenance": self.provenance}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Completion:
        return cls(text=data.get("text") or "", reasoning=data.get("reasoning") or "",
                   finish_reason=data.get("finish_reason"), provenance=dict(data.get("provenance") or {}))


@dataclasses.dataclass
class ChatResult:
    """The outcome of one request. A failed request has `error` set and no completions (never raises)."""

    request: ChatRequest
    completions: list[Completion] = dataclasses.field(default_factory=list)
    error: str | None = None
    cached: bool = False
    key: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


class LLMConfigError(ValueError):
    """The `llm` config is unusable (no endpoints, bad mode, ...)."""


class ReplayMiss(LookupError):
    """Replay mode met a request that is not in the cache: the recorded data is incomplete.

    Raised (not returned) because a replayed demo/CI run with a hole in it would silently produce
    a different dataset than the recording.
    """

    def __init__(self, template_version: str, key: str, cache_dir: str, missing: int = 1, total: int = 1):
        self.template_version = template_version
        self.key = key
        self.cache_dir = cache_dir
        self.missing = missing
        super().__init__(
            f"replay cache miss: template {template_version or '<none>'!r}, request key {key} "
            f"not in cache {cache_dir} ({missing} of {total} requests in this batch missing). "
            "Record the responses (llm.mode=live, or xcoder.llm.cache.record) or fix the prompt/params "
            "that changed the key."
        )
