"""Instruction fine-tuning: the book's training loop (chapter 7) made crash-safe and scalable.

Same data, tokens, loss and AdamW settings as the book; in addition: checkpoints every
``save_every`` steps that resume to the same final weights as an uninterrupted run, gradient
accumulation, length-bucketed batches, DistributedDataParallel under ``torchrun`` (gloo on CPU,
nccl on GPU), bf16 autocast wherever the hardware has native bf16 (``precision="auto"``, see
:mod:`finetune.precision`), fp16 autocast on GPU and opt-in ``torch.compile``.

Determinism: the batches of epoch *e* are a pure function of ``(seed, e)``
(:func:`finetune.dataset.epoch_batches`), dropout draws from the global torch RNG whose state is
checkpointed, and evaluation uses fixed batches and no randomness, so a resumed run replays
exactly what the interrupted one would have done.

Loss: each optimizer step minimises the mean token loss over *all* its tokens (all
micro-batches of ``grad_accum`` and all processes), which for one batch on one process is the
book's ``calc_loss_batch``; so DDP and accumulation change speed, not the objective.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from evalkit.errors import EvalkitError
from evalkit.records import json_lines
from finetune.checkpoint import STATE_FILE, checkpoints_dir, latest_checkpoint, load_training_state, rng_state, save_training_checkpoint, set_rng_state
from finetune.collate import IGNORE_INDEX, collate_batch
from finetune.data import load_records, split_records
from finetune.dataset import InstructionDataset, epoch_batches, padding_fraction
from finetune.model import (
    MODEL_SIZES, METADATA_FILE, load_model, random_model, read_metadata, save_checkpoint_dir, tokenizer_spec_for, use_fused_gelu,
    write_metadata,
)
from finetune.plot import plot_losses, prepare_plotting
from finetune.precision import autocast as autocast_context
from finetune.precision import describe as describe_precision
from finetune.precision import resolve_precision
from finetune.prompts import get_style

LOG_FILE = "train_log.jsonl"
PLOT_FILE = "loss.png"
SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class TrainResult:
    out_dir: Path
    run_id: str | None
    steps: int
    tokens_seen: int
    train_loss: float | None
    val_loss: float | None
    log: list[dict] = field(default_factory=list)
    padding_fraction: float | None = None
    precision: str = "fp32"  # what the run computed in: fp32, or bf16 / fp16 autocast
    # seconds: process start -> each phase's end (start-up), and last step -> return (shutdown)
    timings: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0  # time in optimizer steps of this invocation (no evaluation, no saving)
    train_tokens: int = 0  # input positions (padding included, as tokens_seen) processed in that time
    trained_tokens: int = 0  # of those, positions with a target (what the loss learns from)
    trainable_params: int | None = None
    total_params: int | None = None
    optimizer_state_bytes: int | None = None
    peak_memory_bytes: int | None = None  # peak RSS of the process (CPU) or peak CUDA allocation
    last_step_loss: float | None = None  # mean token loss of this invocation's last optimizer step

    @property
    def tokens_per_second(self) -> float | None:
        return self.train_tokens / self.train_seconds if self.train_seconds else None

    def summary(self) -> dict[str, Any]:
        """What `evalkit finetune` prints: progress, losses, speed and memory (for LoRA against
        full fine-tuning: AdamW keeps two fp32 moments per trained parameter, so full fine-tuning's
        optimizer state is 8 bytes per parameter)."""
        mib = 2**20
        return {
            "out": str(self.out_dir), "run_id": self.run_id, "steps": self.steps, "tokens_seen": self.tokens_seen,
            "train_loss": self.train_loss, "val_loss": self.val_loss, "tokens_per_second": self.tokens_per_second,
            "padding_fraction": self.padding_fraction, "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "trainable_fraction": self.trainable_params / self.total_params if self.total_params else None,
            "optimizer_state_mib": self.optimizer_state_bytes / mib if self.optimizer_state_bytes is not None else None,
            "full_finetune_optimizer_state_mib": 8 * self.total_params / mib if self.total_params else None,
            "peak_memory_mib": self.peak_memory_bytes / mib if self.peak_memory_bytes else None,
            "precision": self.precision, "train_seconds": self.train_seconds, "trained_tokens": self.trained_tokens,
            "last_step_loss": self.last_step_loss, "timings": self.timings,
        }


# -- distributed helpers ----------------------------------------------------------------------


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def _init_distributed(device: str | None) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local, owns), torch.device(f"cuda:{local}" if use_cuda else "cpu")


def _all_sum(values: list[float], dist_info: _Dist, device: torch.device) -> list[float]:
    if not dist_info.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


# -- timing and background work ----------------------------------------------------------------


def _process_age() -> float | None:
    """Seconds since this process started (Linux: /proc), so start-up timings include the
    interpreter and the imports before any evalkit code ran; None elsewhere."""
    try:
        with open("/proc/self/stat") as fh:
            started_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class _Timeline:
    """Named moments of a run, in seconds since the process started (or since train() was
    called where the process start cannot be read)."""

    def __init__(self):
        age = _process_age()
        self._zero = time.perf_counter() - (age if age is not None else 0.0)
        self.marks: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # this process's CPU seconds by then (all threads)

    def mark(self, name: str) -> float:
        self.marks[name] = round(time.perf_counter() - self._zero, 3)
        self.cpu[name] = round(time.process_time(), 3)
        return self.marks[name]


class _Background:
    """Run ``fn`` in a thread (the final checkpoint is written while the final evaluation
    runs: both only read the weights); ``wait`` re-raises what it raised."""

    def __init__(self, fn):
        import threading

        self._error: BaseException | None = None

        def target():
            try:
                fn()
            except BaseException as exc:  # handed to the waiting thread
                self._error = exc

        self._thread = threading.Thread(target=target, name="evalkit-final-save")
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


# -- pieces of the loop -------------------------------------------------------------------------


def _lr_lambda(schedule: str, warmup: int, total: int):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class TokenLoss(torch.nn.Module):
    """Summed cross-entropy of a GPT-2 over the positions that have a target.

    The same numbers as the book's ``calc_loss_batch`` (times the token count), computed more
    cheaply: the output head (vocabulary-sized, most of a small GPT-2's work) runs only on
    positions whose target is not ``ignore_index``, so padding and masked instructions cost
    nothing there. A module, so that DistributedDataParallel wraps it and syncs gradients.
    """

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.transformer(input_ids=inputs).last_hidden_state
        keep = targets != IGNORE_INDEX
        logits = self.lm.lm_head(hidden[keep])
        return F.cross_entropy(logits.float(), targets[keep], reduction="sum")


def _diverged(what: str, step: int, lr: float) -> EvalkitError:
    # never stored as a number: the run is marked failed, and what was logged before it stays
    return EvalkitError(f"training diverged: the {what} is not a finite number at step {step} "
                        f"(--lr {lr:g}; start again with a lower one); the losses logged before it are kept")


def _adamw(params, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """The book's AdamW, with torch's fused kernel: the same update in one pass over each tensor
    instead of a dozen (on a 2-core CPU, 0.8 s instead of 3.7 s of CPU per GPT-2 124M step)."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype the fused kernel does not take
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _loss_sum(model, inputs: torch.Tensor, targets: torch.Tensor, autocast) -> torch.Tensor:
    with autocast:
        return model(inputs, targets)


@torch.no_grad()
def _mean_batch_loss(model, batches: list[tuple[torch.Tensor, torch.Tensor]], device, autocast) -> float | None:
    """The book's ``calc_loss_loader``: the mean over batches of each batch's mean token loss."""
    if not batches:
        return None
    was_training = model.training
    model.eval()
    losses = []
    for inputs, targets in batches:
        n = int((targets != IGNORE_INDEX).sum())
        losses.append(float(_loss_sum(TokenLoss(model), inputs.to(device), targets.to(device), autocast)) / max(n, 1))
    model.train(was_training)
    return sum(losses) / len(losses)


def _autocast(device: torch.device, precision: str):
    """The autocast context and (fp16 only) the gradient scaler for a resolved ``precision``."""
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return autocast_context(device.type, precision), scaler


class _StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop at the next step boundary, after saving a
    checkpoint; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: keep default behaviour
            self._previous.clear()
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _append_log(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read_log(path: Path, up_to_step: int | None = None) -> list[dict]:
    if not path.is_file():
        return []
    entries = []
    for _, line in json_lines(path.read_text(encoding="utf-8")):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut by kill -9
            continue
        if up_to_step is None or entry["step"] <= up_to_step:
            entries.append(entry)
    return entries


def _write_log(path: Path, entries: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    os.replace(tmp, path)


# -- the public entry point ---------------------------------------------------------------------


def train(
    model: str | os.PathLike[str] = "gpt2-medium",
    data: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "finetuned",
    *,
    style: str = "alpaca",
    epochs: int = 2,
    batch_size: int = 8,
    lr: float = 5e-5,
    weight_decay: float = 0.1,
    max_length: int | None = 1024,
    mask_instruction: bool = False,
    bucket: bool = False,
    grad_accum: int = 1,
    seed: int = 123,
    eval_every: int = 5,
    eval_batches: int = 5,
    save_every: int = 50,
    keep_checkpoints: int = 1,
    resume: bool = False,
    stop_after_steps: int | None = None,
    init: str = "pretrained",
    model_size: str | None = None,
    dropout: float | None = 0.0,
    shuffle_seed: int | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
    max_steps: int | None = None,
    warmup_steps: int = 0,
    schedule: str = "constant",
    tokenizer: str | None = None,
    name: str | None = None,
    store=None,
    device: str | None = None,
    precision: str = "auto",
    compile: bool = False,
    progress: bool = True,
    lora_rank: int | None = None,
    lora_alpha: float | None = None,
    lora_targets: list[str] | None = None,
) -> TrainResult:
    """Fine-tune a GPT-2 on instruction data; the result is a Hugging Face checkpoint at ``out``.

    ``model`` is a hub id (``gpt2-medium``, the book's), a checkpoint directory or a book ``.pth``;
    with ``init="random"`` the weights are instead a random initialisation (seeded by ``seed``)
    of ``model_size`` (``gpt2-tiny``, ``gpt2-mini``, ``gpt2``, ``gpt2-medium``, ...; default: the
    size named by ``model``), which needs no download. ``dropout`` defaults to 0.0, the book's
    ``drop_rate`` for fine-tuning (None keeps the model's own). ``data`` defaults to the book's
    instruction data; ``limit`` keeps its first N records. Every ``save_every`` optimizer steps
    a checkpoint is written under ``out/checkpoints``; ``resume=True`` continues from the latest
    one to the same final weights an uninterrupted run reaches; ``stop_after_steps`` ends this
    invocation (with a checkpoint) after that many steps, for time-sliced jobs. With ``store`` (a
    :class:`evalkit.store.ResultsStore`) a ``finetune`` run records each evaluation. With
    ``lora_rank`` only LoRA adapters train (:mod:`finetune.lora`).
    """
    timeline = _Timeline()
    timeline.mark("train_called")
    if init not in ("pretrained", "random"):
        raise EvalkitError(f"init must be 'pretrained' or 'random', not {init!r}")
    if schedule not in SCHEDULES:
        raise EvalkitError(f"schedule must be one of {', '.join(SCHEDULES)}")
    for label, value in (("epochs", epochs), ("batch_size", batch_size), ("grad_accum", grad_accum),
                         ("eval_every", eval_every), ("save_every", save_every), ("keep_checkpoints", keep_checkpoints)):
        if value < 1:
            raise EvalkitError(f"{label} must be at least 1, not {value}")
    out = Path(out)
    dist_info, dev = _init_distributed(device)
    if batch_size % dist_info.world:
        raise EvalkitError(f"batch_size {batch_size} is not divisible by the {dist_info.world} processes")
    precision = resolve_precision(precision, dev.type)
    prompt_style = get_style(style)
    size = model_size or (str(model) if init == "random" else None)
    if init == "random" and size not in MODEL_SIZES:
        raise EvalkitError(f"init='random' needs model_size, one of {', '.join(MODEL_SIZES)} (got {size!r})")
    base_name = f"random:{size}" if init == "random" else None
    if base_name is None:
        from finetune.model import model_name

        base_name = model_name(model)
    tokenizer_spec = tokenizer or (None if init == "random" else tokenizer_spec_for(model))
    from evalkit.assets import get_tokenizer

    encoding = get_tokenizer(tokenizer_spec)

    records = load_records(data, skip_invalid=skip_invalid)
    if limit is not None:
        records = records[:limit]
    split = split_records(records, shuffle_seed=shuffle_seed)
    train_set = InstructionDataset(split["train"], encoding, prompt_style)
    val_set = InstructionDataset(split["val"], encoding, prompt_style)
    if len(train_set) < batch_size:
        raise EvalkitError(f"{len(train_set)} training records are fewer than one batch of {batch_size}")
    lengths = train_set.lengths()
    timeline.mark("data_ready")

    hyper = {
        "base_model": base_name, "init": init, "model_size": size if init == "random" else None,
        "data": str(data) if data is not None else None, "n_records": len(records), "limit": limit,
        "shuffle_seed": shuffle_seed, "style": prompt_style.name, "prompt_template_hash": prompt_style.template_hash,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "max_length": max_length,
        "mask_instruction": mask_instruction, "bucket": bucket, "grad_accum": grad_accum, "seed": seed,
        "eval_every": eval_every, "eval_batches": eval_batches, "dropout": dropout, "max_steps": max_steps,
        "warmup_steps": warmup_steps, "schedule": schedule, "records_hash": _records_hash(records),
        "precision": precision,
    }
    lora = None
    if lora_rank is not None:
        from finetune.lora import LoraSettings, attach_lora, save_lora_checkpoint

        lora = LoraSettings.build(lora_rank, lora_alpha, lora_targets)
        hyper["lora"] = lora.as_dict()  # only when used: full fine-tunes keep resuming their old checkpoints
    save_model = save_checkpoint_dir if lora is None else save_lora_checkpoint
    metadata_base = {
        "name": name or out.resolve().name, "hyperparameters": hyper, "style": prompt_style.as_dict(),
        "data": hyper["data"], "tokenizer": tokenizer_spec or "gpt2",
        "split": {k: [r["id"] for r in v] for k, v in split.items()},
    }

    # -- resume or start -----------------------------------------------------------------------
    checkpoint = latest_checkpoint(out)
    if (out / METADATA_FILE).is_file() and read_metadata(out).get("finished"):
        if resume and _saved_settings(read_metadata(out), hyper) == hyper:
            return _finished_result(out, read_metadata(out))
        raise EvalkitError(f"{out} already holds a finished fine-tune; choose another --out")
    if checkpoint is not None and not resume:
        raise EvalkitError(f"{out} has a checkpoint ({checkpoint.name}); pass --resume to continue it or choose another --out")
    state = None
    if checkpoint is not None:
        saved = _saved_settings(read_metadata(checkpoint), hyper)
        if saved != hyper:
            changed = sorted(k for k in hyper if (saved or {}).get(k) != hyper[k])
            raise EvalkitError(f"{checkpoint}: cannot resume with different settings ({', '.join(changed)})")
        state = load_training_state(checkpoint)
    if checkpoint is not None and lora is None:
        lm, _ = load_model(checkpoint, dropout=dropout)
    elif init == "random":
        lm = random_model(size, seed=seed, dropout=dropout)
    else:
        lm, _ = load_model(model, dropout=dropout)
    use_fused_gelu(lm)
    context = getattr(lm.config, "n_positions", None)
    if max_length is not None and context is not None and max_length > context:  # checked before any run exists
        raise EvalkitError(f"--max-length {max_length} exceeds the model's context length ({context} tokens)")
    if lora is not None:  # the frozen base as at the start, the adapters from the checkpoint if any
        lm = attach_lora(lm, lora, seed=seed, adapter_from=checkpoint)
    lm.to(dev)
    lm.train()
    timeline.mark("model_ready")
    if dist_info.main:  # only once every input is checked: bad input stays one line
        print(f"precision: {describe_precision(precision, dev.type)}", file=sys.stderr)

    batches_per_epoch = len(epoch_batches(lengths, batch_size, seed=seed, epoch=0, bucket=bucket))
    steps_per_epoch = math.ceil(batches_per_epoch / grad_accum)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)

    optimizer = _adamw([p for p in lm.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(schedule, warmup_steps, total_steps))
    autocast, scaler = _autocast(dev, precision)
    step, tokens_seen, epoch, next_batch = 0, 0, 0, 0
    if state is not None:
        if state["optimizer"] is not None:  # None only in a run's final checkpoint, after which no step follows
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, tokens_seen, epoch, next_batch = state["step"], state["tokens_seen"], state["epoch"], state["next_batch"]
        rngs = state["rng"]
        set_rng_state(rngs[dist_info.rank] if dist_info.rank < len(rngs) else rngs[0])
    else:
        torch.manual_seed(seed)  # the book's torch.manual_seed(123) before training: dropout draws

    forward_model = TokenLoss(lm)
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        forward_model = DistributedDataParallel(forward_model, device_ids=[dist_info.local_rank] if dev.type == "cuda" else None)
    if compile:
        forward_model = torch.compile(forward_model)

    # fixed evaluation batches, as the book's eval_iter batches (here not reshuffled per call)
    def fixed_batches(dataset):
        items = [dataset[i] for i in range(len(dataset))]
        chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)][:eval_batches]
        return [collate_batch(c, allowed_max_length=max_length, mask_instruction=mask_instruction) for c in chunks]

    eval_train, eval_val = (fixed_batches(train_set), fixed_batches(val_set)) if dist_info.main else ([], [])

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG_FILE
    log: list[dict] = []
    run = None
    if dist_info.main:
        log = _read_log(log_path, up_to_step=step) if state is not None else []
        _write_log(log_path, log)
        if store is not None:
            run = store.start_run("finetune", base_name, hyper, model_path=str(out.resolve()))

    def write_checkpoint(final: bool = False) -> _Background | None:
        """A resumable checkpoint of this step. ``final``: the run's last one, written in a
        background thread (returned; the caller waits for it) and without the optimizer state,
        which no later step reads (it is twice the size of the weights)."""
        rngs = [rng_state()]
        if dist_info.enabled:
            gathered: list[Any] = [None] * dist_info.world
            torch.distributed.all_gather_object(gathered, rngs[0])
            rngs = gathered
        pending = None
        if dist_info.main:
            training_state = {
                "step": step, "epoch": epoch, "next_batch": next_batch, "tokens_seen": tokens_seen,
                "optimizer": None if final else optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "rng": rngs, "world_size": dist_info.world,
            }
            meta = {**metadata_base, "step": step, "tokens_seen": tokens_seen, "finished": False, "run_id": run.id if run else None}

            def save() -> None:
                save_training_checkpoint(
                    out, step, lambda folder: save_model(lm, folder, tokenizer=tokenizer_spec, metadata=meta),
                    training_state, keep=keep_checkpoints,
                )

            if final:
                pending = _Background(save)
            else:
                save()
        if not final:
            dist_info.barrier()
        return pending

    def evaluate() -> None:
        if dist_info.main:
            entry = {
                "step": step, "epoch": round(step / steps_per_epoch, 6), "tokens_seen": tokens_seen,
                "train_loss": _mean_batch_loss(lm, eval_train, dev, autocast),
                "val_loss": _mean_batch_loss(lm, eval_val, dev, autocast),
                "lr": scheduler.get_last_lr()[0],
            }
            for name in ("train_loss", "val_loss"):
                if entry[name] is not None and not math.isfinite(entry[name]):
                    raise _diverged({"train_loss": "train-set loss", "val_loss": "validation loss"}[name], step, lr)
            log.append(entry)
            _append_log(log_path, entry)
            if run is not None:
                payload = {k: entry[k] for k in ("step", "epoch", "tokens_seen", "train_loss", "val_loss")}
                run.add_sample(f"step-{step:08d}", payload)
                run.log_metrics({"train_loss": entry["train_loss"], "val_loss": entry["val_loss"],
                                 "tokens_seen": tokens_seen, "steps": step})
        dist_info.barrier()

    bar = task = None
    if progress and dist_info.main:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from evalkit.output import console

        bar = Progress(TextColumn("finetune"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                       TimeRemainingColumn(), console=console(stderr=True), transient=True)
        task = bar.add_task("train", total=total_steps, completed=step, info="")
        bar.start()
    timeline.mark("ready_to_train")
    started, tokens_at_start, step_at_start = time.perf_counter(), tokens_seen, step
    final_save, final_started = None, False
    used_batches: dict[int, list[list[int]]] = {}
    step_seconds, trained_tokens, step_loss = 0.0, 0, None
    per_rank = batch_size // dist_info.world
    try:
        with _StopFlag() as stop, (run if run is not None else nullcontext()):
            while step < total_steps:
                if epoch not in used_batches:
                    used_batches[epoch] = epoch_batches(lengths, batch_size, seed=seed, epoch=epoch, bucket=bucket)
                batches = used_batches[epoch]
                if next_batch >= len(batches):
                    epoch, next_batch = epoch + 1, 0
                    continue
                step_began = time.perf_counter()
                if step == step_at_start:
                    timeline.mark("first_step_began")
                group = batches[next_batch : next_batch + grad_accum]
                micro = [
                    collate_batch([train_set[i] for i in b[dist_info.rank * per_rank : (dist_info.rank + 1) * per_rank]],
                                  allowed_max_length=max_length, mask_instruction=mask_instruction)
                    for b in group
                ]
                local_tokens = sum(int((t != IGNORE_INDEX).sum()) for _, t in micro)
                local_seen = sum(x.numel() for x, _ in micro)
                n_tokens, seen, stop_votes = _all_sum([local_tokens, local_seen, float(stop.requested)], dist_info, dev)
                if stop_votes:  # Ctrl-C / SIGTERM: keep every finished step, then stop
                    write_checkpoint()
                    raise KeyboardInterrupt
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for i, (inputs, targets) in enumerate(micro):
                    sync = i == len(micro) - 1 or not dist_info.enabled
                    ctx = nullcontext() if sync else forward_model.no_sync()
                    with ctx:
                        loss = _loss_sum(forward_model, inputs.to(dev), targets.to(dev), autocast) * (dist_info.world / max(n_tokens, 1))
                        (scaler.scale(loss) if scaler is not None else loss).backward()
                    step_loss += float(loss.detach()) / dist_info.world
                # fp16's scaler skips a step whose gradients overflowed; otherwise a loss that is
                # not a number has diverged: stop before the step spreads it into the weights
                if scaler is None and _all_sum([float(not math.isfinite(step_loss))], dist_info, dev)[0]:
                    raise _diverged("training loss", step + 1, lr)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                step += 1
                tokens_seen += int(seen)
                step_seconds += time.perf_counter() - step_began
                timeline.mark("last_step")
                if step == step_at_start + 1:
                    timeline.mark("first_step")
                trained_tokens += int(n_tokens)
                next_batch += len(group)
                if next_batch >= len(batches):
                    epoch, next_batch = epoch + 1, 0
                if bar is not None:
                    rate = (tokens_seen - tokens_at_start) / max(time.perf_counter() - started, 1e-9)
                    bar.update(task, completed=step, info=f"loss {step_loss:.3f}  {rate:,.0f} tok/s")
                if step == total_steps:  # written (and the plotting library loaded) while the final evaluation runs
                    final_save, final_started = write_checkpoint(final=True), True
                    if dist_info.main:
                        prepare_plotting()
                if step % eval_every == 0 or step == total_steps:
                    evaluate()
                    timeline.mark("evaluated")
                if step % save_every == 0 and step < total_steps:
                    write_checkpoint()
                if stop_after_steps is not None and step - step_at_start >= stop_after_steps and step < total_steps:
                    if step % save_every:
                        write_checkpoint()
                    if run is not None:
                        run.finish("interrupted")
                    result = TrainResult(out, run.id if run else None, step, tokens_seen,
                                       log[-1]["train_loss"] if log else None, log[-1]["val_loss"] if log else None, list(log))
                    break
            else:
                # final: the model at OUT itself, plus a last resumable checkpoint
                if not final_started:  # resumed from the final checkpoint itself: write it again
                    final_save = write_checkpoint(final=True)
                result = _finish(out, final_save, metadata_base, log, step, tokens_seen, run, dist_info)
    finally:
        if bar is not None:
            bar.stop()
        if dist_info.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    all_batches = [b for batches in used_batches.values() for b in batches]
    result.padding_fraction = padding_fraction(lengths, all_batches, max_length) if all_batches else None
    result.train_seconds, result.train_tokens = step_seconds, tokens_seen - tokens_at_start
    result.trained_tokens = trained_tokens
    result.last_step_loss = step_loss
    result.precision = precision
    result.timings = _timings(timeline)
    _record_footprint(result, lm, optimizer, dev)
    return result


def _saved_settings(meta: dict, hyper: dict) -> dict | None:
    """The settings a checkpoint was trained with; checkpoints from before ``precision`` was
    recorded resume under the precision resolved now."""
    saved = meta.get("hyperparameters")
    if saved is not None and "precision" not in saved:
        saved = {**saved, "precision": hyper["precision"]}
    return saved


def _record_footprint(result: TrainResult, lm, optimizer, dev: torch.device) -> None:
    """Trainable parameters, optimizer state and peak memory, to set LoRA against full fine-tuning."""
    from finetune.lora import optimizer_state_bytes, parameter_counts

    counts = parameter_counts(lm)
    result.trainable_params, result.total_params = counts["trainable_params"], counts["total_params"]
    result.optimizer_state_bytes = optimizer_state_bytes(optimizer)
    if dev.type == "cuda":
        result.peak_memory_bytes = torch.cuda.max_memory_allocated(dev)
    else:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result.peak_memory_bytes = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _records_hash(records: list[dict]) -> str:
    from evalkit.hashing import content_hash

    return content_hash([[r["instruction"], r["input"], r["output"]] for r in records])


def _finish(out: Path, final_save: _Background | None, metadata_base, log, step, tokens_seen, run, dist_info) -> TrainResult:
    """The fine-tuned model at ``out``: the final checkpoint's files, hard-linked (written once),
    and the metadata that marks the run finished, last."""
    last = log[-1] if log else {}
    if dist_info.main:
        meta = {**metadata_base, "step": step, "tokens_seen": tokens_seen, "finished": True,
                "run_id": run.id if run else None,
                "metrics": {"train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                            "tokens_seen": tokens_seen, "steps": step}}
        if log:  # drawn while the final checkpoint is still being written
            plot_losses(log, out / PLOT_FILE, title=metadata_base["name"])
        final_save.wait()
        checkpoint = checkpoints_dir(out) / f"step-{step:08d}"
        tmp = out / f".final-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for file in checkpoint.iterdir():
            if file.is_dir():  # LoRA's adapter/ beside the merged weights
                shutil.copytree(file, tmp / file.name, copy_function=_link_or_copy)
            elif file.name not in (STATE_FILE, METADATA_FILE):
                _link_or_copy(file, tmp / file.name)
        write_metadata(tmp, meta)
        # metadata last: a crash before it leaves the run unfinished (and resumable)
        for file in sorted(tmp.iterdir(), key=lambda p: p.name == METADATA_FILE):
            if file.is_dir() and (out / file.name).is_dir():  # a folder is not replaced in one rename
                shutil.rmtree(out / file.name)
            os.replace(file, out / file.name)
        tmp.rmdir()
        if run is not None:
            run.log_metrics({"train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                             "tokens_seen": tokens_seen, "steps": step})
    dist_info.barrier()
    return TrainResult(out, run.id if run else None, step, tokens_seen, last.get("train_loss"), last.get("val_loss"), log)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (no second copy of the weights), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _timings(timeline: _Timeline) -> dict[str, float]:
    """The training summary's timings: the moments, and the spans the start-up and shutdown
    budgets are about. ``startup_seconds`` is the tax before any training (process start -> the
    first optimizer step begins); ``first_step_seconds`` that step itself (pure compute, the same
    as any other step's). ``shutdown_seconds`` is last step -> return; the final evaluation in it
    is work the user asked for (``--eval-batches``), so ``shutdown_overhead_seconds`` leaves it out."""
    marks = dict(timeline.marks)
    marks["returned"] = timeline.mark("returned")
    cpu = timeline.cpu
    if "first_step_began" in marks:
        marks["startup_seconds"] = marks["first_step_began"]
        marks["startup_cpu_seconds"] = cpu["first_step_began"]
    if "first_step" in marks and "first_step_began" in marks:
        marks["first_step_seconds"] = round(marks["first_step"] - marks["first_step_began"], 3)
    if "last_step" in marks:
        marks["shutdown_seconds"] = round(marks["returned"] - marks["last_step"], 3)
        marks["shutdown_cpu_seconds"] = round(cpu["returned"] - cpu["last_step"], 3)
        if "evaluated" in marks and marks["evaluated"] >= marks["last_step"]:
            marks["final_evaluation_seconds"] = round(marks["evaluated"] - marks["last_step"], 3)
            marks["shutdown_overhead_seconds"] = round(marks["shutdown_seconds"] - marks["final_evaluation_seconds"], 3)
    return marks


def _finished_result(out: Path, meta: dict) -> TrainResult:
    metrics = meta.get("metrics") or {}
    return TrainResult(out, meta.get("run_id"), meta.get("step", 0), meta.get("tokens_seen", 0), metrics.get("train_loss"),
                       metrics.get("val_loss"), _read_log(out / LOG_FILE),
                       precision=(meta.get("hyperparameters") or {}).get("precision") or "fp32")
