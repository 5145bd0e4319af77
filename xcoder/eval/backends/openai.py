"""Any OpenAI-compatible endpoint (a vLLM/SGLang server, a hosted API) through `xcoder.llm`, which
brings concurrency, retries, failover, the request cache (resume/replay) and usage accounting."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from xcoder.eval.backends import request_seed
from xcoder.eval.generation import GenRequest, Sample, SamplingConfig

log = logging.getLogger(__name__)


class OpenAIBackend:
    name = "openai"

    def __init__(self, cfg: Any, *, model: str, template_version: str = "", chunk: int | None = None):
        from xcoder.llm import LLMClient

        self.client = LLMClient.from_config(cfg.llm, stage="eval")
        self.model = model
        self.template_version = template_version
        self.chunk = int(chunk or cfg.eval.openai.chunk)
        self.failed_requests = 0

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model}

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> Iterator[list[Sample]]:
        from xcoder.llm import ChatRequest

        for start in range(0, len(requests), self.chunk):
            part = requests[start : start + self.chunk]
            chats = []
            for req in part:
                params: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                                          "max_tokens": sampling.max_tokens, "n": req.count,
                                          "seed": request_seed(sampling.seed, req.problem_id, req.first_index)}
                if sampling.top_k:
                    params["top_k"] = sampling.top_k
                chats.append(ChatRequest(messages=req.messages, params=params, model=self.model,
                                         template_version=self.template_version,
                                         meta={"problem_id": req.problem_id, "first_index": req.first_index}))
            results = self.client.run(chats, desc=f"eval generate {start + len(part)}/{len(requests)}")
            batch = []
            for req, res in zip(part, results):
                if res.error:
                    self.failed_requests += 1
                    log.error("eval request for %s failed: %s (samples stay missing; rerun resumes)",
                              req.problem_id, res.error)
                    continue
                for j, comp in enumerate(res.completions[: req.count]):
                    text = comp.text
                    if comp.reasoning and "<think>" not in text:
                        text = f"<think>{comp.reasoning}</think>{text}"  # keep the raw shape; extraction strips it
                    batch.append(Sample(req.problem_id, req.first_index + j, text,
                                        comp.finish_reason or "", comp.reasoning or ""))
            yield batch

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            close()
