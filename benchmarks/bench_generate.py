"""Generation speed: evalkit's batched KV-cache greedy decoding against the book's ``generate``
(one prompt at a time, the whole context re-run for every token, no cache) on the same prompts
and a random-weight model of GPT-2 small's size (124M); checks the tokens are identical.
Each variant runs in its own fork (peak RSS per variant)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from benchmarks._forked import run_forked

SHARED = Path(os.environ.get("EVALKIT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
DATA = SHARED / "book-ch07" / "instruction-data.json"
# the staged GPT-2 BPE when present (offline), else tiktoken's gpt2 (same ids)
TOKENIZER = str(SHARED / "gpt2-tokenizer") if (SHARED / "gpt2-tokenizer").is_dir() else None
MODEL_SIZE = "gpt2"  # GPT-2 small: 12 layers, 768 wide
N_PROMPTS = 8
MAX_NEW_TOKENS = 20
BATCH_SIZE = 8


def _model():
    from finetune import random_model

    return random_model(MODEL_SIZE, seed=123).eval()


def _book(prompts: list[list[int]]) -> dict:
    from finetune import book_generate

    model = _model()
    started = time.perf_counter()
    out = [book_generate(model, torch.tensor([p]), MAX_NEW_TOKENS, 1024, eos_id=50256)[0, len(p):].tolist() for p in prompts]
    return {"seconds": time.perf_counter() - started, "tokens": out}


def _batched(prompts: list[list[int]]) -> dict:
    from finetune import generate_batch

    model = _model()
    started = time.perf_counter()
    out: list[list[int]] = []
    for i in range(0, len(prompts), BATCH_SIZE):
        out += generate_batch(model, prompts[i : i + BATCH_SIZE], max_new_tokens=MAX_NEW_TOKENS)
    return {"seconds": time.perf_counter() - started, "tokens": out}


def run() -> dict:
    from evalkit.assets import get_tokenizer
    from finetune import encode_text, format_prompt, load_records, split_records

    tokenizer = get_tokenizer(TOKENIZER)
    records = split_records(load_records(DATA))["test"][:N_PROMPTS]
    prompts = [encode_text(tokenizer, format_prompt(r)) for r in records]
    book, book_peak = run_forked(_book, prompts)
    fast, fast_peak = run_forked(_batched, prompts)
    rows = []
    for label, result, peak in (("book generate, batch 1, no cache (baseline)", book, book_peak),
                                (f"evalkit batched KV cache, batch {BATCH_SIZE}", fast, fast_peak)):
        n = sum(len(t) for t in result["tokens"])
        rows.append({"method": label, "prompts": len(prompts), "new tokens": n, "seconds": result["seconds"],
                     "tokens/s": n / result["seconds"], "peak RSS MiB": peak})
    return {
        "title": f"greedy generation, random {MODEL_SIZE} (124M), {MAX_NEW_TOKENS} new tokens, torch threads {torch.get_num_threads()}",
        "rows": rows,
        "ratios": {
            "batched KV cache / book tokens/s": rows[1]["tokens/s"] / rows[0]["tokens/s"],
            "identical tokens": str(book["tokens"] == fast["tokens"]),
            "peak RSS evalkit / book": fast_peak / book_peak,
        },
    }
