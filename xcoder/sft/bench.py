"""Benchmark SFT data conversion against pure tokenization of the same texts (same run, same CPU).

    python -m xcoder.sft.bench --rows 5000 --chars 8000 [--tokenizer PATH]

Conversion = checks + dedup + chat-template render + tokenize + JSONL write. The ratio to the
tokenizer-only baseline shows the overhead this stage adds on top of the unavoidable tokenization,
and stays meaningful on a busy shared machine where absolute rows/s do not.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from xcoder.sft.data import ConvertStats, Example, convert, render_for_length


def synthetic_examples(rows: int, chars: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    words = "the of sum int input print range for while if else return dp graph edge node mod".split()
    out = []
    for i in range(rows):
        body = " ".join(rng.choice(words) for _ in range(chars // 5))
        out.append(Example(id=str(i), messages=[
            {"role": "user", "content": f"Problem {i}: {body[: chars // 8]}"},
            {"role": "assistant", "content": f"<think>\n{body}\n</think>\n\n```python\nprint({i})\n```"}]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.sft.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--chars", type=int, default=8000, help="characters of reasoning per row")
    parser.add_argument("--tokenizer", default=None, help="tokenizer dir/hub id (default: the tiny model's)")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tok_path = args.tokenizer
        if tok_path is None:
            from xcoder.tiny_model import build_tiny_model

            tok_path = str(build_tiny_model(Path(tmp) / "tiny"))
        tokenizer = AutoTokenizer.from_pretrained(tok_path)
        examples = synthetic_examples(args.rows, args.chars)

        t0 = time.perf_counter()
        texts = [render_for_length(tokenizer, ex.messages) for ex in examples]
        n_tokens = sum(len(ids) for i in range(0, len(texts), 256)
                       for ids in tokenizer(texts[i:i + 256], add_special_tokens=False)["input_ids"])
        base = time.perf_counter() - t0

        stats = ConvertStats(source="bench", input="synthetic", output="", tokenizer=tok_path, max_tokens=None, key="")
        t0 = time.perf_counter()
        convert(iter(examples), Path(tmp) / "train.jsonl", tokenizer=tokenizer, stats=stats, max_tokens=None)
        conv = time.perf_counter() - t0

    print(f"rows={args.rows} chars/row~{args.chars} tokens={n_tokens} (mean {n_tokens / args.rows:.0f}/row)")
    print(f"baseline render+tokenize: {base:.2f}s  {args.rows / base:,.0f} rows/s  {n_tokens / base:,.0f} tok/s")
    print(f"convert (checks+dedup+tokenize+write): {conv:.2f}s  {args.rows / conv:,.0f} rows/s  {n_tokens / conv:,.0f} "
          f"tok/s")
    print(f"ratio convert/baseline: {conv / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
