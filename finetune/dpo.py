"""Direct Preference Optimization (Rafailov et al. 2023) of a GPT-2: the chapter's bonus material.

Records hold a prompt (``instruction``, optional ``input``) and two responses, ``chosen`` and
``rejected`` (the book's ``instruction-data-with-preference.json``; read by the same reader as
``evalkit pairs from-preference``). The loss is the paper's::

    -log sigmoid(beta * ((log pi(y_c|x) - log ref(y_c|x)) - (log pi(y_r|x) - log ref(y_r|x))))

on log-probabilities *summed* over the response tokens (the response header, the response and
its end-of-text token; the prompt is masked exactly as ``--mask-instruction`` masks it in SFT),
with the reference model frozen. The book's notebook averages over tokens instead; the sum is
the paper's sequence likelihood. Each evaluation logs the loss, the mean reward margin
``beta * (chosen log-ratio - rejected log-ratio)`` and the preference accuracy (share of pairs
whose chosen reward is strictly higher) on fixed train and validation batches.

The loop keeps SFT's guarantees by reusing its parts (:mod:`finetune.train`): crash-safe
checkpoints that resume to the same weights, Ctrl-C saves and stops, DistributedDataParallel
under ``torchrun``, gradient accumulation, LoRA.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from evalkit.errors import EvalkitError
from finetune.checkpoint import latest_checkpoint, load_training_state, rng_state, save_training_checkpoint, set_rng_state
from finetune.collate import IGNORE_INDEX, collate_batch
from finetune.data import split_records
from finetune.dataset import encode_text, epoch_batches
from finetune.model import METADATA_FILE, MODEL_SIZES, load_model, random_model, read_metadata, save_checkpoint_dir, tokenizer_spec_for
from finetune.plot import plot_losses
from finetune.precision import resolve_precision
from finetune.prompts import get_style
from finetune.train import (
    LOG_FILE,
    SCHEDULES,
    TrainResult,
    _all_sum,
    _append_log,
    _autocast,
    _init_distributed,
    _lr_lambda,
    _read_log,
    _record_footprint,
    _StopFlag,
    _write_log,
)


@dataclass
class DpoResult(TrainResult):
    val_accuracy: float | None = None
    val_reward_margin: float | None = None

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "method": "dpo", "val_preference_accuracy": self.val_accuracy,
                "val_reward_margin": self.val_reward_margin}


# -- data ---------------------------------------------------------------------------------------


def load_preference_records(path: str | os.PathLike[str]) -> list[dict]:
    """Validated preference records with an ``id`` (the instruction + input item id)."""
    from evalkit.human.bundle import read_preference_records
    from evalkit.items import instruction_item_id

    records = [dict(r) for r in read_preference_records(path)]
    for record in records:
        record["input"] = record.get("input") or ""
        record["id"] = instruction_item_id(record["instruction"], record["input"])
    if not records:
        raise EvalkitError(f"{path}: no preference records")
    return records


class PreferenceDataset:
    """``dataset[i] -> (chosen, rejected)``, each ``{"input_ids", "prompt_length"}`` as
    :class:`finetune.dataset.InstructionDataset` encodes a record (prompt part + response part)."""

    def __init__(self, records: list[dict], tokenizer, style="alpaca"):
        self.style = get_style(style)
        self.items = []
        for record in records:
            prompt = self.style.format_prompt(record)
            n_prompt = len(encode_text(tokenizer, prompt))
            pair = tuple(
                {"input_ids": encode_text(tokenizer, prompt + self.style.format_response({"output": record[side]})),
                 "prompt_length": n_prompt}
                for side in ("chosen", "rejected")
            )
            self.items.append(pair)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]

    def lengths(self) -> list[int]:
        return [max(len(c["input_ids"]), len(r["input_ids"])) for c, r in self.items]


def collate_pairs(pairs, max_length: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of 2B rows, the B chosen then the B rejected, prompts masked."""
    items = [c for c, _ in pairs] + [r for _, r in pairs]
    return collate_batch(items, allowed_max_length=max_length, mask_instruction=True)


# -- the objective --------------------------------------------------------------------------------


def sequence_logprobs(lm, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per row, the summed log-probability of the target tokens (those not ``IGNORE_INDEX``).
    As in SFT's ``TokenLoss``, the vocabulary-sized head runs only on those positions."""
    hidden = lm.transformer(input_ids=inputs).last_hidden_state
    keep = targets != IGNORE_INDEX
    logits = lm.lm_head(hidden[keep]).float()
    token_logprobs = -F.cross_entropy(logits, targets[keep], reduction="none")
    rows = keep.nonzero()[:, 0]
    return torch.zeros(inputs.shape[0], dtype=token_logprobs.dtype, device=inputs.device).index_add(0, rows, token_logprobs)


class PairLogprobs(torch.nn.Module):
    """:func:`sequence_logprobs` as a module, so that DistributedDataParallel wraps it."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return sequence_logprobs(self.lm, inputs, targets)


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """``(losses, chosen_rewards, rejected_rewards)`` per pair, from summed log-probabilities."""
    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards)
    return losses, chosen_rewards.detach(), rejected_rewards.detach()


def _pair_terms(policy, ref, inputs, targets, beta, autocast):
    with autocast:
        policy_lp = policy(inputs, targets)
        with torch.no_grad():
            ref_lp = sequence_logprobs(ref, inputs, targets)
    half = inputs.shape[0] // 2
    return dpo_loss(policy_lp[:half], policy_lp[half:], ref_lp[:half], ref_lp[half:], beta)


@torch.no_grad()
def preference_metrics(lm, ref, batches, beta: float, device, autocast=nullcontext()) -> dict[str, float | None]:
    """Mean loss, mean reward margin and preference accuracy over all pairs of ``batches``."""
    if not batches:
        return {"loss": None, "reward_margin": None, "accuracy": None}
    was_training = lm.training
    lm.eval()
    losses, margins = [], []
    for inputs, targets in batches:
        loss, chosen, rejected = _pair_terms(PairLogprobs(lm), ref, inputs.to(device), targets.to(device), beta, autocast)
        losses.append(loss.float())
        margins.append((chosen - rejected).float())
    lm.train(was_training)
    loss, margin = torch.cat(losses), torch.cat(margins)
    return {"loss": float(loss.mean()), "reward_margin": float(margin.mean()), "accuracy": float((margin > 0).float().mean())}


# -- training -------------------------------------------------------------------------------------


def train_dpo(
    model: str | os.PathLike[str] = "gpt2-medium",
    data: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "dpo",
    *,
    ref_model: str | os.PathLike[str] | None = None,
    beta: float = 0.1,
    style: str = "alpaca",
    epochs: int = 1,
    batch_size: int = 8,
    lr: float = 5e-6,
    weight_decay: float = 0.01,
    max_length: int | None = 1024,
    mask_instruction: bool = True,
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
) -> DpoResult:
    """DPO-tune ``model`` on preference records ``data``; the result is a checkpoint at ``out``.

    ``ref_model`` is the frozen reference (default: ``model`` itself, i.e. the policy's start,
    as in the paper). The prompt is always masked (``mask_instruction`` is accepted for the
    same options as SFT). The other options mean what they mean for :func:`finetune.train`.
    """
    if data is None:
        raise EvalkitError("--method dpo needs --data: a JSON/JSONL file of records with instruction, chosen and rejected")
    if skip_invalid:
        raise EvalkitError("--skip-invalid is not available with --method dpo: fix or remove the named record")
    if not beta > 0:
        raise EvalkitError(f"--beta must be positive, not {beta}")
    if init not in ("pretrained", "random"):
        raise EvalkitError(f"init must be 'pretrained' or 'random', not {init!r}")
    if schedule not in SCHEDULES:
        raise EvalkitError(f"schedule must be one of {', '.join(SCHEDULES)}")
    for label, value in (("epochs", epochs), ("batch_size", batch_size), ("grad_accum", grad_accum),
                         ("eval_every", eval_every), ("save_every", save_every), ("keep_checkpoints", keep_checkpoints)):
        if value < 1:
            raise EvalkitError(f"{label} must be at least 1, not {value}")
    out = Path(out)
    prompt_style = get_style(style)
    size = model_size or (str(model) if init == "random" else None)
    if init == "random" and size not in MODEL_SIZES:
        raise EvalkitError(f"init='random' needs model_size, one of {', '.join(MODEL_SIZES)} (got {size!r})")
    from finetune.model import model_name

    base_name = f"random:{size}" if init == "random" else model_name(model)
    ref_name = base_name if ref_model is None else model_name(ref_model)
    tokenizer_spec = tokenizer or (None if init == "random" else tokenizer_spec_for(model))
    from evalkit.assets import get_tokenizer
    from evalkit.hashing import content_hash

    records = load_preference_records(data)
    if limit is not None:
        records = records[:limit]
    split = split_records(records, shuffle_seed=shuffle_seed)
    encoding = get_tokenizer(tokenizer_spec)
    train_set = PreferenceDataset(split["train"], encoding, prompt_style)
    val_set = PreferenceDataset(split["val"], encoding, prompt_style)
    dist_info, dev = _init_distributed(device)
    precision = resolve_precision(precision, dev.type)  # 'auto' means bf16 only where the hardware has it
    if batch_size % dist_info.world:
        raise EvalkitError(f"batch_size {batch_size} is not divisible by the {dist_info.world} processes")
    if len(train_set) < batch_size:
        raise EvalkitError(f"{len(train_set)} training pairs are fewer than one batch of {batch_size}")
    lengths = train_set.lengths()

    hyper = {
        "method": "dpo", "base_model": base_name, "ref_model": ref_name, "beta": beta, "init": init,
        "model_size": size if init == "random" else None, "data": str(data), "n_records": len(records), "limit": limit,
        "shuffle_seed": shuffle_seed, "style": prompt_style.name, "prompt_template_hash": prompt_style.template_hash,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "max_length": max_length,
        "bucket": bucket, "grad_accum": grad_accum, "seed": seed, "eval_every": eval_every, "eval_batches": eval_batches,
        "dropout": dropout, "max_steps": max_steps, "warmup_steps": warmup_steps, "schedule": schedule,
        "precision": precision,
        "records_hash": content_hash([[r["instruction"], r["input"], r["chosen"], r["rejected"]] for r in records]),
    }
    lora = None
    if lora_rank is not None:
        from finetune.lora import LoraSettings, attach_lora, save_lora_checkpoint

        lora = LoraSettings.build(lora_rank, lora_alpha, lora_targets)
        hyper["lora"] = lora.as_dict()
    save_model = save_checkpoint_dir if lora is None else save_lora_checkpoint
    metadata_base = {
        "name": name or out.resolve().name, "hyperparameters": hyper, "style": prompt_style.as_dict(), "data": str(data),
        "tokenizer": tokenizer_spec or "gpt2", "split": {k: [r["id"] for r in v] for k, v in split.items()},
    }

    checkpoint = latest_checkpoint(out)
    if (out / METADATA_FILE).is_file() and read_metadata(out).get("finished"):
        if resume and read_metadata(out).get("hyperparameters") == hyper:
            return _finished(out, read_metadata(out))
        raise EvalkitError(f"{out} already holds a finished fine-tune; choose another --out")
    if checkpoint is not None and not resume:
        raise EvalkitError(f"{out} has a checkpoint ({checkpoint.name}); pass --resume to continue it or choose another --out")
    state = None
    if checkpoint is not None:
        saved = read_metadata(checkpoint).get("hyperparameters")
        if saved != hyper:
            changed = sorted(k for k in hyper if (saved or {}).get(k) != hyper[k])
            raise EvalkitError(f"{checkpoint}: cannot resume with different settings ({', '.join(changed)})")
        state = load_training_state(checkpoint)

    def start_model():
        if init == "random":
            return random_model(size, seed=seed, dropout=dropout)
        return load_model(model, dropout=dropout)[0]

    ref = (start_model() if ref_model is None else load_model(ref_model, dropout=0.0)[0]).to(dev).eval()
    ref.requires_grad_(False)
    if checkpoint is not None and lora is None:
        lm = load_model(checkpoint, dropout=dropout)[0]
    else:
        lm = start_model()
    if lora is not None:
        lm = attach_lora(lm, lora, seed=seed, adapter_from=checkpoint)
    lm.to(dev)
    lm.train()

    batches_per_epoch = len(epoch_batches(lengths, batch_size, seed=seed, epoch=0, bucket=bucket))
    steps_per_epoch = math.ceil(batches_per_epoch / grad_accum)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    optimizer = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(schedule, warmup_steps, total_steps))
    autocast, scaler = _autocast(dev, precision)
    step, tokens_seen, epoch, next_batch = 0, 0, 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, tokens_seen, epoch, next_batch = state["step"], state["tokens_seen"], state["epoch"], state["next_batch"]
        rngs = state["rng"]
        set_rng_state(rngs[dist_info.rank] if dist_info.rank < len(rngs) else rngs[0])
    else:
        torch.manual_seed(seed)

    policy = PairLogprobs(lm)
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        policy = DistributedDataParallel(policy, device_ids=[dist_info.local_rank] if dev.type == "cuda" else None)
    if compile:
        policy = torch.compile(policy)

    def fixed_batches(dataset):
        items = [dataset[i] for i in range(len(dataset))]
        return [collate_pairs(items[i : i + batch_size], max_length) for i in range(0, len(items), batch_size)][:eval_batches]

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

    def write_checkpoint() -> None:
        rngs = [rng_state()]
        if dist_info.enabled:
            gathered: list[Any] = [None] * dist_info.world
            torch.distributed.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if dist_info.main:
            training_state = {
                "step": step, "epoch": epoch, "next_batch": next_batch, "tokens_seen": tokens_seen,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "rng": rngs, "world_size": dist_info.world,
            }
            meta = {**metadata_base, "step": step, "tokens_seen": tokens_seen, "finished": False, "run_id": run.id if run else None}
            save_training_checkpoint(out, step, lambda folder: save_model(lm, folder, tokenizer=tokenizer_spec, metadata=meta),
                                     training_state, keep=keep_checkpoints)
        dist_info.barrier()

    def evaluate() -> None:
        if dist_info.main:
            tr = preference_metrics(lm, ref, eval_train, beta, dev, autocast)
            va = preference_metrics(lm, ref, eval_val, beta, dev, autocast)
            entry = {"step": step, "epoch": round(step / steps_per_epoch, 6), "tokens_seen": tokens_seen,
                     "train_loss": tr["loss"], "val_loss": va["loss"], "train_accuracy": tr["accuracy"],
                     "val_accuracy": va["accuracy"], "train_reward_margin": tr["reward_margin"],
                     "val_reward_margin": va["reward_margin"], "lr": scheduler.get_last_lr()[0]}
            log.append(entry)
            _append_log(log_path, entry)
            if run is not None:
                run.add_sample(f"step-{step:08d}", {k: v for k, v in entry.items() if k != "lr"})
                run.log_metrics(_metrics(entry, step))
        dist_info.barrier()

    bar = task = None
    if progress and dist_info.main:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from evalkit.output import console

        bar = Progress(TextColumn("dpo"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                       TimeRemainingColumn(), console=console(stderr=True), transient=True)
        task = bar.add_task("dpo", total=total_steps, completed=step, info="")
        bar.start()
    tokens_at_start, step_at_start = tokens_seen, step
    used_batches: dict[int, list[list[int]]] = {}
    step_seconds, trained_tokens = 0.0, 0
    per_rank = batch_size // dist_info.world
    result: DpoResult | None = None
    try:
        with _StopFlag() as stop, (run if run is not None else nullcontext()):
            if step == 0 and not log:
                evaluate()  # the starting point of the accuracy curve (policy == reference: all rewards 0)
            while step < total_steps:
                if epoch not in used_batches:
                    used_batches[epoch] = epoch_batches(lengths, batch_size, seed=seed, epoch=epoch, bucket=bucket)
                batches = used_batches[epoch]
                if next_batch >= len(batches):
                    epoch, next_batch = epoch + 1, 0
                    continue
                began = time.perf_counter()
                group = batches[next_batch : next_batch + grad_accum]
                micro = [collate_pairs([train_set[i] for i in b[dist_info.rank * per_rank : (dist_info.rank + 1) * per_rank]], max_length)
                         for b in group]
                local_pairs = sum(x.shape[0] // 2 for x, _ in micro)
                local_tokens = sum(int((t != IGNORE_INDEX).sum()) for _, t in micro)
                local_seen = sum(x.numel() for x, _ in micro)
                n_pairs, n_tokens, seen, stop_votes = _all_sum([local_pairs, local_tokens, local_seen, float(stop.requested)], dist_info, dev)
                if stop_votes:
                    write_checkpoint()
                    raise KeyboardInterrupt
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for i, (inputs, targets) in enumerate(micro):
                    sync = i == len(micro) - 1 or not dist_info.enabled
                    with nullcontext() if sync else policy.no_sync():
                        losses, _, _ = _pair_terms(policy, ref, inputs.to(dev), targets.to(dev), beta, autocast)
                        loss = losses.sum() * (dist_info.world / max(n_pairs, 1))  # the mean over all pairs of the step
                        (scaler.scale(loss) if scaler is not None else loss).backward()
                    step_loss += float(loss.detach()) / dist_info.world
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                step += 1
                tokens_seen += int(seen)
                trained_tokens += int(n_tokens)
                step_seconds += time.perf_counter() - began
                next_batch += len(group)
                if next_batch >= len(batches):
                    epoch, next_batch = epoch + 1, 0
                if bar is not None:
                    bar.update(task, completed=step, info=f"loss {step_loss:.3f}")
                if step % eval_every == 0 or step == total_steps:
                    evaluate()
                if step % save_every == 0 and step < total_steps:
                    write_checkpoint()
                if stop_after_steps is not None and step - step_at_start >= stop_after_steps and step < total_steps:
                    if step % save_every:
                        write_checkpoint()
                    if run is not None:
                        run.finish("interrupted")
                    result = _result(out, run.id if run else None, step, tokens_seen, log)
                    break
            else:
                write_checkpoint()
                if dist_info.main:
                    meta = {**metadata_base, "step": step, "tokens_seen": tokens_seen, "finished": True,
                            "run_id": run.id if run else None, "metrics": _metrics(log[-1], step) if log else {}}
                    tmp = out / f".final-{os.getpid()}"
                    save_model(lm, tmp, tokenizer=tokenizer_spec, metadata=meta)
                    for file in sorted(tmp.iterdir(), key=lambda p: p.name == METADATA_FILE):  # metadata last
                        os.replace(file, out / file.name)
                    tmp.rmdir()
                    plot_losses(log, out / "loss.png", title=f"{metadata_base['name']} (DPO)")
                dist_info.barrier()
                result = _result(out, run.id if run else None, step, tokens_seen, log)
    finally:
        if bar is not None:
            bar.stop()
        if dist_info.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    result.train_seconds, result.train_tokens, result.trained_tokens = step_seconds, tokens_seen - tokens_at_start, trained_tokens
    _record_footprint(result, lm, optimizer, dev)
    return result


def _metrics(entry: dict, step: int) -> dict[str, Any]:
    return {"train_loss": entry["train_loss"], "val_loss": entry["val_loss"], "val_preference_accuracy": entry["val_accuracy"],
            "val_reward_margin": entry["val_reward_margin"], "tokens_seen": entry["tokens_seen"], "steps": step}


def _result(out: Path, run_id, step, tokens_seen, log) -> DpoResult:
    last = log[-1] if log else {}
    return DpoResult(out, run_id, step, tokens_seen, last.get("train_loss"), last.get("val_loss"), list(log),
                     val_accuracy=last.get("val_accuracy"), val_reward_margin=last.get("val_reward_margin"))


def _finished(out: Path, meta: dict) -> DpoResult:
    return _result(out, meta.get("run_id"), meta.get("step", 0), meta.get("tokens_seen", 0), _read_log(out / LOG_FILE))
