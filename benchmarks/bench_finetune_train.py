"""Fine-tuning throughput against the hardware's peak: GPT-2 124M (random init) on the book's
chapter 7 data, batch 8.

Measured in one run, so the ratios hold however busy the machine is:

- the machine's matmul peaks (2048 x 2048, ``torch.get_num_threads()`` threads) in fp32 and
  bf16, at the start and at the end (the higher of the two counts: the machine is shared);
- the book-style loop (chapter 7: ``DataLoader`` + the book's ``custom_collate_fn`` from the
  ``llms-from-scratch`` package + ``AdamW``, one process, fp32, full-vocabulary head on every
  position), on the first batches of evalkit's unbucketed epoch, in a fork of this process;
- ``evalkit finetune --init random --model gpt2 --bucket`` at ``--precision fp32`` and ``auto``,
  each as its own command (so time to first step includes the interpreter and every import);
- the same two loops on ``gpt2-mini`` (4 layers, 256 wide) for small-model overhead.

Throughput is *trained* tokens/s: positions with a target (what the loss learns from; padding
and masked positions excluded), so loops that pad differently compare fairly. Achieved FLOP/s
counts 6 x N FLOPs per trained token (forward 2N, backward 4N), N = the weights that enter a
matmul (the 12 blocks and the tied output head: 123.7M for GPT-2 124M; embedding lookups and
the attention-score FLOPs are not counted, the usual MFU convention). MFU = achieved FLOP/s /
the matmul peak of the precision the loop computes in.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from benchmarks._forked import run_forked

SHARED = Path(os.environ.get("EVALKIT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
DATA = SHARED / "book-ch07" / "instruction-data.json"
# the staged GPT-2 BPE when present (offline), else tiktoken's gpt2 (same ids)
TOKENIZER = str(SHARED / "gpt2-tokenizer") if (SHARED / "gpt2-tokenizer").is_dir() else None
BATCH_SIZE = 8
MAX_LENGTH = 1024  # the book's allowed_max_length
SEED = 123
LR = 5e-5
# optimizer steps per loop; EVALKIT_BENCH_STEPS shortens them while developing
STEPS = {"gpt2": int(os.environ.get("EVALKIT_BENCH_STEPS", 20)), "gpt2-mini": 10}
BOOK_STEPS = {"gpt2": min(6, STEPS["gpt2"]), "gpt2-mini": 10}
EVAL_BATCHES = 2  # the final evaluation (train and val loss) of each evalkit run, part of its shutdown
PEAK_SIZE = 2048


def peak_size(dtype: torch.dtype) -> int:
    """2048, except bf16 on a CPU without native bf16: emulated at well under 1 GFLOP/s there, a
    2048 matmul takes a minute, and 512 shows the same (lack of) speed."""
    from finetune.precision import cpu_has_native_bf16

    return PEAK_SIZE if dtype != torch.bfloat16 or cpu_has_native_bf16() else 512


def matmul_peak(dtype: torch.dtype, min_seconds: float = 1.0) -> float:
    """FLOP/s of a square matmul, best of runs repeated for at least ``min_seconds``."""
    n = peak_size(dtype)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b  # warm-up: oneDNN / MKL pick their kernels
    best, spent = 0.0, 0.0
    while spent < min_seconds or best == 0.0:
        began = time.perf_counter()
        a @ b
        seconds = time.perf_counter() - began
        spent += seconds
        best = max(best, 2 * n**3 / seconds)
    return best


def matmul_params(model_size: str) -> int:
    """N of the 6N rule: the weights that enter a matmul (blocks and the tied head)."""
    from finetune.model import size_config

    c = size_config(model_size)
    block = 12 * c.n_embd**2 + 13 * c.n_embd  # attention (4 d^2) + MLP (8 d^2), their biases, 2 LayerNorms
    return c.n_layer * block + c.vocab_size * c.n_embd


def _book_loop(model_size: str, encoded: list[list[int]], batches: list[list[int]]) -> dict:
    from llms_from_scratch.ch07 import custom_collate_fn as book_collate

    from finetune import random_model

    model = random_model(model_size, seed=SEED, dropout=0.0)
    model.train()
    torch.manual_seed(SEED)
    # the book's DataLoader, drawing the same batches evalkit's first (unbucketed) epoch uses
    loader = torch.utils.data.DataLoader(
        encoded, batch_sampler=batches, num_workers=0, collate_fn=partial(book_collate, allowed_max_length=MAX_LENGTH),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.1)
    trained, steps, loss = 0, 0, None
    started = time.perf_counter()
    for input_batch, target_batch in loader:
        optimizer.zero_grad()
        logits = model(input_batch).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())
        loss.backward()
        optimizer.step()
        trained += int((target_batch != -100).sum())
        steps += 1
        if steps == len(batches):
            break
    return {"seconds": time.perf_counter() - started, "trained": trained, "steps": steps, "loss": loss.item()}


def _evalkit_command(model_size: str, precision: str, steps: int, extra: tuple[str, ...] = ()) -> dict:
    """``evalkit finetune`` as a user runs it; timings from its summary line and from outside."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            sys.executable, "-m", "evalkit", "--store", str(Path(tmp) / "evalkit.db"), "finetune",
            "--init", "random", "--model", model_size, "--bucket", "--data", str(DATA), "--batch-size", str(BATCH_SIZE),
            "--max-length", str(MAX_LENGTH), "--max-steps", str(steps), "--eval-every", str(steps),
            "--eval-batches", str(EVAL_BATCHES), "--seed", str(SEED), "--precision", precision,
            "--out", str(Path(tmp) / "out"), "--no-progress", "--format", "json", *extra,
        ] + (["--tokenizer", TOKENIZER] if TOKENIZER else [])
        began = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"evalkit finetune failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    timings = summary["timings"]
    return {
        "seconds": summary["train_seconds"], "trained": summary["trained_tokens"], "steps": summary["steps"],
        "loss": summary["last_step_loss"], "val_loss": summary["val_loss"], "precision": summary["precision"],
        "to_first_step": timings["startup_seconds"], "startup_cpu": timings["startup_cpu_seconds"],
        "first_step": timings.get("first_step_seconds"),
        "shutdown": wall - timings["last_step"],  # last step -> the command's exit
        "final_eval": timings.get("final_evaluation_seconds"), "wall": wall,
        "marks": {k: timings[k] for k in ("train_called", "data_ready", "model_ready", "ready_to_train") if k in timings},
    }


# what the start-up is made of: each a fresh interpreter, so imports are paid in full
_IMPORT_STEPS = {
    "python": "pass",
    "+ import torch": "import torch",
    "+ import evalkit CLI": "import torch, evalkit.cli",
    "+ transformers' GPT-2": "import torch, evalkit.cli, transformers.models.gpt2.modeling_gpt2",
}


def import_profile(repeats: int = 3) -> dict[str, float]:
    """Wall seconds of a fresh interpreter doing each cumulative step (best of ``repeats``)."""
    seconds = {}
    for name, code in _IMPORT_STEPS.items():
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best = min(best, time.perf_counter() - began)
        seconds[name] = best
    return seconds


def _options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks finetune_train")
    p.add_argument("--compile", action="append", default=[], choices=list(STEPS), metavar="SIZE",
                   help="also run `evalkit finetune --compile` (torch.compile) on this model size; repeatable")
    return p.parse_args(argv or [])


def run(argv: list[str] | None = None) -> dict:
    options = _options(argv)
    from evalkit.assets import get_tokenizer
    from finetune import InstructionDataset, epoch_batches, load_records, split_records
    from finetune.precision import resolve_precision

    threads = torch.get_num_threads()
    # every torch computation runs in a fork: OpenMP's thread pool, once started in this process,
    # would hang the forked children
    peaks = {"fp32": run_forked(matmul_peak, torch.float32)[0], "bf16": run_forked(matmul_peak, torch.bfloat16)[0]}
    print(f"peaks GFLOP/s: { {k: round(v / 1e9, 1) for k, v in peaks.items()} }", file=sys.stderr, flush=True)

    train_records = split_records(load_records(DATA))["train"]
    dataset = InstructionDataset(train_records, get_tokenizer(TOKENIZER))
    lengths = dataset.lengths()
    encoded = [dataset[i]["input_ids"] for i in range(len(dataset))]
    auto = resolve_precision("auto", "cpu")

    measured: dict[tuple[str, str], dict] = {}
    for size in ("gpt2-mini", "gpt2"):
        batches = epoch_batches(lengths, BATCH_SIZE, seed=SEED, epoch=0)[: BOOK_STEPS[size]]
        measured[(size, "book")], _ = run_forked(_book_loop, size, encoded, batches)
        print(f"{size} book loop: {measured[(size, 'book')]}", file=sys.stderr, flush=True)
        measured[(size, "fp32")] = _evalkit_command(size, "fp32", STEPS[size])
        print(f"{size} evalkit fp32: {measured[(size, 'fp32')]}", file=sys.stderr, flush=True)
        # auto: run only where it is not fp32 (else it is the same command as the row above)
        measured[(size, "auto")] = measured[(size, "fp32")] if auto == "fp32" else _evalkit_command(size, "auto", STEPS[size])
        if size in options.compile:  # compiling is paid before the first step: it shows in "to first step"
            measured[(size, "compile")] = _evalkit_command(size, "fp32", STEPS[size], extra=("--compile",))
            print(f"{size} evalkit fp32 --compile: {measured[(size, 'compile')]}", file=sys.stderr, flush=True)
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        peaks[name] = max(peaks[name], run_forked(matmul_peak, dtype)[0])
    imports = import_profile()
    return summarise(measured, peaks, imports, auto=auto, threads=threads)


def summarise(measured: dict[tuple[str, str], dict], peaks: dict[str, float], imports: dict[str, float], *,
              auto: str, threads: int) -> dict:
    """The table and ratios of the measured loops (apart from ``run`` so it can be checked on
    figures without measuring them again)."""
    rows, ratios = [], {}
    for (size, loop), m in measured.items():
        tps = m["trained"] / m["seconds"]
        computes_in = "fp32" if loop == "book" else m["precision"]
        flops = 6 * matmul_params(size) * tps
        label = {"book": "book-style loop (baseline)", "fp32": "evalkit --precision fp32",
                 "auto": f"evalkit --precision auto (= {m.get('precision')})",
                 "compile": "evalkit --precision fp32 --compile"}[loop]
        rows.append({
            "model": size, "loop": label, "steps": m["steps"], "trained tokens/s": tps,
            "x book": tps / (measured[(size, "book")]["trained"] / measured[(size, "book")]["seconds"]),
            "GFLOP/s": flops / 1e9, "MFU": flops / peaks[computes_in],
            "to first step s": m.get("to_first_step"), "first step s": m.get("first_step"),
            "shutdown s": m.get("shutdown"), "final eval s": m.get("final_eval"),
            "last-step loss": m["loss"], "val loss": m.get("val_loss"),
        })
    fp32, auto_m = measured[("gpt2", "fp32")], measured[("gpt2", "auto")]
    ratios["peak fp32 GFLOP/s"] = f"{peaks['fp32'] / 1e9:.0f}"
    ratios[f"peak bf16 GFLOP/s ({peak_size(torch.bfloat16)}x{peak_size(torch.bfloat16)})"] = f"{peaks['bf16'] / 1e9:.1f}"
    ratios["auto resolves to"] = auto
    ratios["gpt2 auto / book trained tokens/s"] = next(r["x book"] for r in rows if r["model"] == "gpt2" and r["loop"].startswith("evalkit --precision auto"))
    ratios["gpt2 auto vs fp32 last-step loss"] = f"{(auto_m['loss'] - fp32['loss']) / fp32['loss']:+.3%}"
    ratios["gpt2 fp32: process CPU seconds to first step"] = f"{fp32['startup_cpu']:.2f}"
    ratios["gpt2 fp32: start-up moments (s since process start)"] = ", ".join(f"{k} {v:.2f}" for k, v in fp32["marks"].items())
    ratios["start-up imports, fresh interpreter (s)"] = ", ".join(f"{k} {v:.2f}" for k, v in imports.items())
    if fp32["final_eval"] is not None:
        ratios["gpt2 fp32: shutdown without the final evaluation (s)"] = f"{fp32['shutdown'] - fp32['final_eval']:.2f}"
    ratios["gpt2 fp32: final evaluation seconds (in shutdown)"] = f"{fp32['final_eval']:.2f}" if fp32["final_eval"] is not None else "-"
    return {
        "title": f"fine-tuning GPT-2 (random init), batch {BATCH_SIZE}, book data, torch threads {threads}; "
                 f"MFU = 6N x trained tokens/s / matmul peak of the loop's precision",
        "rows": rows,
        "ratios": ratios,
        "peaks": peaks,
        "measured": {f"{size}/{loop}": m for (size, loop), m in measured.items()},
    }
