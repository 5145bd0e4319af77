"""CPU smoke: real `swift sft` (ms-swift 4.6.0) for a few steps on the tiny model, with data this
stage converted from a synthesis parquet and from a released-format (query/response) sample; the
published checkpoint then loads with transformers and generates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xcoder.config import compose
from xcoder.registry import stage_cli

from .samples import write_released_jsonl, write_sft_parquet

main = stage_cli("sft")


def train(tmp_path: Path, tiny_model: Path, name: str, *data_overrides: str) -> Path:
    args = ["experiment=demo", f"run.output_dir={tmp_path}/{name}", f"sft.tiny_model_dir={tiny_model}",
            "sft.swift.max_steps=2", "sft.swift.save_steps=2", "sft.swift.logging_steps=1", *data_overrides]
    assert main(args) == 0
    cfg = compose(args)
    final = Path(cfg.sft.final_checkpoint)
    assert final.is_symlink() and os.readlink(final) == "checkpoints/checkpoint-2"
    assert cfg.rl.model_path == str(final)
    return final


def load_and_generate(final: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 1 + 2?"}], tokenize=False,
                                     add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    return tok.decode(out[0, ids["input_ids"].shape[1]:])


@pytest.mark.slow
def test_swift_sft_from_synthesis_parquet_then_generate(tmp_path, tiny_model):
    parquet = write_sft_parquet(tmp_path / "sft.parquet", n=8)
    final = train(tmp_path, tiny_model, "synth", f"sft.data.train_parquet={parquet}")
    log = [json.loads(line) for line in (final.parent / "checkpoints" / "logging.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 2 and all(float(x) > 0 for x in losses)
    assert isinstance(load_and_generate(final), str)


@pytest.mark.slow
def test_swift_sft_from_released_query_response_sample_then_generate(tmp_path, tiny_model):
    sample = write_released_jsonl(tmp_path / "hybrid_376k.jsonl", n=8)
    final = train(tmp_path, tiny_model, "released", "sft.data.source=released", f"sft.data.released.path={sample}")
    stats = json.loads((final.parent / "data" / "stats.json").read_text())
    assert stats["source"] == "released" and stats["rows_written"] == 8 and stats["with_think"] == 8
    assert isinstance(load_and_generate(final), str)
