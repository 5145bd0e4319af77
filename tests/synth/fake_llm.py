"""A scripted stand-in for `xcoder.llm.LLMClient` (same run/usage surface) for stage tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xcoder.llm.types import ChatResult, Completion


class FakeClient:
    """`answer(request)` returns a str (may hold <think>), a Completion, a ChatResult (e.g. with a
    scripted `error`), or None for a failed call."""

    def __init__(self, answer: Callable[[Any], Any]):
        self.answer = answer
        self.requests: list[Any] = []

    def run(self, requests, desc: str = "") -> list[ChatResult]:
        out = []
        for req in requests:
            self.requests.append(req)
            ans = self.answer(req)
            if isinstance(ans, ChatResult):
                out.append(ans)
                continue
            if ans is None:
                out.append(ChatResult(request=req, error="HTTP 500: scripted failure"))
                continue
            if isinstance(ans, str):
                reasoning, text = "", ans
                if ans.startswith("<think>") and "</think>" in ans:
                    reasoning, text = ans[7:].split("</think>", 1)
                ans = Completion(text=text.strip(), reasoning=reasoning.strip(), finish_reason="stop")
            out.append(ChatResult(request=req, completions=[ans]))
        return out

    def usage(self) -> dict[str, Any]:
        return {"fake": {"requests": len(self.requests)}}
