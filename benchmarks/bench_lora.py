"""LoRA against full fine-tuning of GPT-2 124M (random init: no pretrained weights can be
downloaded here): trained tokens/s, peak RSS, trainable parameters and optimizer state, through
evalkit's own `train` (the same loop, checkpoints and merged save as `evalkit finetune`).

Full fine-tuning is the baseline, measured in the same process; each variant runs in its own
fork, so each peak RSS is its own (it includes writing the final checkpoint, which for LoRA
means merging the adapters into the weights). Few steps: on a small shared CPU one step of the
124M model takes seconds; the ratios, not the absolute figures, are the result.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from benchmarks._forked import run_forked

SHARED = Path(os.environ.get("EVALKIT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
DATA = SHARED / "book-ch07" / "instruction-data.json"
TOKENIZER = str(SHARED / "gpt2-tokenizer") if (SHARED / "gpt2-tokenizer").is_dir() else None
MODEL_SIZE = os.environ.get("EVALKIT_BENCH_LORA_SIZE", "gpt2")  # GPT-2 124M
BATCH_SIZE = 4
MAX_LENGTH = 256
STEPS = int(os.environ.get("EVALKIT_BENCH_LORA_STEPS", "4"))
SEED = 123
VARIANTS = {"full fine-tuning (baseline)": {}, "LoRA rank 8": {"lora_rank": 8, "lora_alpha": 16.0},
            "LoRA rank 16": {"lora_rank": 16, "lora_alpha": 32.0}}


def _train(options: dict) -> dict:
    from finetune import train

    with tempfile.TemporaryDirectory() as tmp:
        result = train(MODEL_SIZE, DATA, Path(tmp) / "out", init="random", batch_size=BATCH_SIZE, max_length=MAX_LENGTH,
                       max_steps=STEPS, eval_every=10_000, eval_batches=1, save_every=10_000, seed=SEED,
                       tokenizer=TOKENIZER, progress=False, **options)
    return {"seconds": result.train_seconds, "trained": result.trained_tokens, "tokens": result.train_tokens,
            "trainable": result.trainable_params, "total": result.total_params, "optimizer": result.optimizer_state_bytes}


def run() -> dict:
    rows, figures = [], {}
    for label, options in VARIANTS.items():
        result, peak_mib = run_forked(_train, options)
        trained_tps = result["trained"] / result["seconds"]
        figures[label] = (trained_tps, peak_mib, result["optimizer"])
        rows.append({"variant": label, "steps": STEPS, "train seconds": result["seconds"], "trained tokens/s": trained_tps,
                     "trainable params": result["trainable"], "trainable %": 100 * result["trainable"] / result["total"],
                     "optimizer state MiB": result["optimizer"] / 2**20, "peak RSS MiB": peak_mib})
    base = figures["full fine-tuning (baseline)"]
    ratios = {}
    for label in list(VARIANTS)[1:]:
        ratios[f"{label} / full: trained tokens/s"] = figures[label][0] / base[0]
        ratios[f"{label} / full: peak RSS"] = figures[label][1] / base[1]
        ratios[f"{label} / full: optimizer state"] = figures[label][2] / base[2]
    return {"title": f"LoRA vs full fine-tuning, {MODEL_SIZE} (random init), batch {BATCH_SIZE}, max length {MAX_LENGTH}, "
                     f"{STEPS} steps, torch threads {torch.get_num_threads()}",
            "rows": rows, "ratios": ratios}
