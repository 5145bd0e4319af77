"""The engine side of offline vLLM generation: engine arguments, one chunk through `LLM.chat` with
per-request `SamplingParams`, and `Engines` (one engine in this process, or data-parallel replicas
as Ray actors pulling chunks).

This module imports only the standard library, `vllm` and `ray`, because it runs in two places: in
the main interpreter when vLLM is installed there (the GPU stack), and inside the vLLM worker
process (`vllm_worker.py`) started with another interpreter (`.venv-vllm`, whose pins cannot share
the main venv). Everything crossing a process boundary is plain JSON-able dicts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

log = logging.getLogger(__name__)


def engine_kwargs(model_path: str, opts: dict[str, Any]) -> dict[str, Any]:
    """`vllm.LLM(**kwargs)` for the `eval.vllm` options."""
    kwargs = {"model": model_path, "tensor_parallel_size": opts["tensor_parallel_size"], "dtype": opts["dtype"],
              "gpu_memory_utilization": opts["gpu_memory_utilization"], "enforce_eager": opts["enforce_eager"],
              "trust_remote_code": opts["trust_remote_code"], "seed": opts["seed"]}
    if opts.get("max_model_len"):
        kwargs["max_model_len"] = opts["max_model_len"]
    return kwargs


def sampling_params(req: dict[str, Any], sampling: dict[str, Any]) -> dict[str, Any]:
    """The `SamplingParams` keywords of one request: its own n and seed, the run's sampling."""
    kw = dict(n=req["count"], temperature=sampling["temperature"], top_p=sampling["top_p"],
              max_tokens=sampling["max_tokens"], seed=req["seed"])
    if sampling.get("top_k"):
        kw["top_k"] = sampling["top_k"]
    return kw


def run_chunk(llm: Any, chunk: list[dict[str, Any]], sampling: dict[str, Any]) -> list[dict[str, Any]]:
    """Generate one chunk with an engine; plain dicts in and out (they cross Ray and process boundaries)."""
    from vllm import SamplingParams

    params = [SamplingParams(**sampling_params(req, sampling)) for req in chunk]
    outputs = llm.chat([r["messages"] for r in chunk], sampling_params=params, use_tqdm=False)
    rows = []
    for req, out in zip(chunk, outputs):
        for j, comp in enumerate(out.outputs):
            rows.append({"problem_id": req["problem_id"], "index": req["first_index"] + j, "text": comp.text,
                         "finish_reason": str(comp.finish_reason or "")})
    return rows


class Engines:
    """`dp` engines: one in this process (dp 1), or `dp` Ray actors each holding one engine.

    `ray_init` are the `ray.init` keywords (address, private temp dir, CPU count); Ray is imported
    only when dp > 1.
    """

    def __init__(self, kwargs: dict[str, Any], *, dp: int, tp: int, ray_num_gpus: float,
                 ray_init: dict[str, Any] | None = None):
        self.llm: Any = None
        self.actors: list[Any] = []
        if dp == 1:
            from vllm import LLM

            self.llm = LLM(**kwargs)
            return
        import ray

        ray.init(**(ray_init or {}))
        log.info("vLLM data parallel: %d replicas x TP %d over Ray (%s)", dp, tp,
                 (ray_init or {}).get("address") or "local")

        # One engine per actor. The actor holds its `tp` GPUs (one node: Ray places an actor's GPUs
        # together and sets CUDA_VISIBLE_DEVICES), so vLLM's default multiprocessing executor runs the
        # TP workers inside that reservation; a Ray executor would ask Ray for the same GPUs again.
        @ray.remote(num_gpus=ray_num_gpus)
        class Replica:
            def __init__(self, engine_kwargs: dict[str, Any]):
                from vllm import LLM

                self.llm = LLM(**engine_kwargs, distributed_executor_backend="mp" if tp > 1 else None)

            def run(self, chunk: list[dict[str, Any]], sampling: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
                import os

                return os.getpid(), run_chunk(self.llm, chunk, sampling)

        self.actors = [Replica.remote(kwargs) for _ in range(dp)]

    def run(self, chunks: Sequence[list[dict[str, Any]]],
            sampling: dict[str, Any]) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        """Yield (chunk index, pid of the engine's process, rows) as each chunk finishes."""
        if self.llm is not None:
            import os

            for i, chunk in enumerate(chunks):
                yield i, os.getpid(), run_chunk(self.llm, chunk, sampling)
            return
        import ray

        pending: dict[Any, tuple[Any, int]] = {}
        queue = list(enumerate(chunks))
        idle = list(self.actors)
        while queue or pending:
            while queue and idle:
                actor, (i, chunk) = idle.pop(), queue.pop(0)
                pending[actor.run.remote(chunk, sampling)] = (actor, i)
            done, _ = ray.wait(list(pending), num_returns=1)
            actor, i = pending.pop(done[0])
            idle.append(actor)
            pid, rows = ray.get(done[0])
            yield i, pid, rows

    def close(self) -> None:
        if self.actors:
            import ray

            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
        self.llm = None
