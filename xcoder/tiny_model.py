"""Build a tiny random-init Qwen2 model with a locally trained BPE tokenizer and a ChatML template.

No weights can be downloaded on CI or in the demo, yet the SFT, RL and eval code paths must run
for real; this model is small enough to train for a few steps on CPU in seconds. head_dim is 32
because vLLM's CPU attention rejects smaller heads.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

log = logging.getLogger(__name__)

CHAT_TEMPLATE = (
    "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}"
)

_WORDS = (
    "the a of to and is in that it for on with as are this be by from at or an was can "
    "input output print read int def return for while if else range len sum max min list "
    "solution code python answer question solve number test case think n m k"
).split()


def _corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = [f"What is {a} + {b}? The answer is {a + b}." for a, b in
             ((rng.randint(0, 999), rng.randint(0, 999)) for _ in range(2000))]
    lines += [" ".join(rng.choice(_WORDS) for _ in range(12)) for _ in range(3000)]
    lines += ["```python\nn = int(input())\nprint(sum(map(int, input().split())))\n```"] * 50
    return lines


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, vocab_size: int = 2048,
                     max_position_embeddings: int = 2048) -> Path:
    """Write config, weights, tokenizer and chat template to `out_dir` (idempotent)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    if (out / "config.json").exists() and (out / "tokenizer.json").exists() and any(out.glob("*.safetensors")):
        return out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(seed), trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.save_pretrained(out)
    cfg = Qwen2Config(
        vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True, eos_token_id=hf_tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=hf_tok.pad_token_id,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    log.info("tiny model written to %s", out)
    return out


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "outputs/tiny-model"))
