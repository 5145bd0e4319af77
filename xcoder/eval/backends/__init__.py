"""Generation backends: `vllm` (offline engine, Ray data parallel), `openai` (any OpenAI-compatible
endpoint through `xcoder.llm`), `hf` (transformers, CPU debugging)."""

from __future__ import annotations

import zlib
from typing import Any

BACKENDS = ("vllm", "openai", "hf", "reference")


def request_seed(base: int, problem_id: str, first_index: int) -> int:
    """A stable per-(problem, first sample) seed, so a resumed run draws the same samples."""
    return (base * 1_000_003 + zlib.crc32(problem_id.encode()) + first_index * 7919) % (2**31 - 1)


def make_backend(cfg: Any, *, model_path: str, template_version: str = "") -> Any:
    """The backend named by `eval.generation.backend`; heavy imports happen only here."""
    name = cfg.eval.generation.backend
    if name == "hf":
        from xcoder.eval.backends.hf import HFBackend

        return HFBackend(model_path, **dict(cfg.eval.hf))
    if name == "openai":
        from xcoder.eval.backends.openai import OpenAIBackend

        return OpenAIBackend(cfg, model=cfg.eval.openai.model or model_path, template_version=template_version)
    if name == "vllm":
        from xcoder.eval.backends.vllm import VLLMBackend

        return VLLMBackend(model_path, work_dir=f"{cfg.eval.output_dir}/vllm_worker", **dict(cfg.eval.vllm))
    if name == "reference":
        from xcoder.eval.backends.reference import ReferenceBackend

        return ReferenceBackend.from_file(cfg.eval.reference.solutions_path)
    raise ValueError(f"eval.generation.backend: unknown backend {name!r} (one of {BACKENDS})")
