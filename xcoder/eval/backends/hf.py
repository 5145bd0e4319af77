"""transformers `generate` on CPU (or one GPU): slow, for debugging the stage end to end."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from tqdm import tqdm

from xcoder.eval.backends import request_seed
from xcoder.eval.generation import GenRequest, Sample, SamplingConfig

log = logging.getLogger(__name__)


class HFBackend:
    name = "hf"

    def __init__(self, model_path: str, *, dtype: str = "float32", device: str = "cpu", threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(int(threads))  # on a busy CPU, 1 thread beats 2 by 10-30x for tiny models

        self.model_path, self.device, self.dtype = model_path, device, dtype
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device)
        self.model.eval()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_path, "dtype": self.dtype, "device": self.device}

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> Iterator[list[Sample]]:
        import torch

        limit = getattr(self.model.config, "max_position_embeddings", None)
        for req in tqdm(requests, desc="eval hf generate", unit="problem"):
            ids = self.tokenizer.apply_chat_template(req.messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True)["input_ids"].to(self.device)
            max_new = sampling.max_tokens
            if limit is not None and ids.shape[1] + max_new > limit:
                max_new = max(1, limit - ids.shape[1])
                log.warning("%s: prompt %d tokens + max_tokens %d exceeds the model's %d positions; "
                            "generating %d tokens", req.problem_id, ids.shape[1], sampling.max_tokens, limit, max_new)
            torch.manual_seed(request_seed(sampling.seed, req.problem_id, req.first_index))
            do_sample = sampling.temperature > 0
            kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": do_sample,
                                      "num_return_sequences": req.count,
                                      "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
            if do_sample:
                kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=sampling.top_k if sampling.top_k else 0)
            with torch.no_grad():
                out = self.model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
            batch = []
            eos = self.tokenizer.eos_token_id
            for j, seq in enumerate(out):
                new = seq[ids.shape[1]:]
                finished = eos is not None and bool((new == eos).any())
                batch.append(Sample(req.problem_id, req.first_index + j,
                                    self.tokenizer.decode(new, skip_special_tokens=True),
                                    "stop" if finished else "length"))
            yield batch

    def close(self) -> None:
        self.model = None
