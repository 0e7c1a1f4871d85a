"""Generation: batched greedy/sampled decoding with a KV cache, and ``generate`` runs in the store.

Why a hand-written loop instead of ``model.generate``: sampling here draws each record's tokens
from its own generator seeded by ``(seed, record id)``, so a record's text never depends on which
other records shared its batch. That is what lets a resumed run, or one with another
``batch_size``, reproduce the same responses; ``model.generate`` draws a whole batch from one
generator. Greedy decoding equals the book's ``generate`` token for token (tests check it).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore, content_hash
from finetune.collate import PAD_TOKEN_ID
from finetune.dataset import encode_text
from finetune.prompts import PromptStyle, get_style

EOS_ID = PAD_TOKEN_ID


def book_generate(model, idx: torch.Tensor, max_new_tokens: int, context_size: int, temperature: float = 0.0,
                  top_k: int | None = None, eos_id: int | None = None) -> torch.Tensor:
    """The book's ``generate`` (chapter 5, used in chapter 7): one sequence at a time, the whole
    context re-run for every new token, no cache. Kept as the reference the fast path is tested
    and benchmarked against."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond, use_cache=False).logits
        logits = logits[:, -1, :]
        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)
        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if idx_next == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def record_seed(seed: int, key: str) -> int:
    return int(hashlib.sha256(f"{seed}/{key}".encode()).hexdigest()[:15], 16)


def _select(logits: torch.Tensor, temperature: float, top_k: int | None, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """Next token per row, in the book's order: top-k filter, temperature, softmax, multinomial."""
    if top_k is not None:
        min_val = torch.topk(logits, top_k).values[:, -1:]
        logits = torch.where(logits < min_val, torch.full_like(logits, float("-inf")), logits)
    if temperature <= 0.0:
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.stack([torch.multinomial(probs[j], 1, generator=g)[0] for j, g in enumerate(generators)])


@torch.no_grad()
def generate_batch(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 256,
    eos_id: int = EOS_ID,
    temperature: float = 0.0,
    top_k: int | None = None,
    seeds: Sequence[int] | None = None,
) -> list[list[int]]:
    """New tokens for each prompt (without the end token), decoded together with a KV cache.

    Prompts are left-padded with an attention mask and position ids counted from each prompt's
    first real token, so every row sees exactly what it would see alone. Rows that reach
    ``eos_id`` leave the batch (their cache rows are dropped). A prompt longer than
    ``n_positions - max_new_tokens`` keeps its last tokens (the book's window slides instead).
    """
    if not prompts:
        return []
    device = next(model.parameters()).device
    limit = max(model.config.n_positions - max_new_tokens, 1)
    prompts = [list(p)[-limit:] for p in prompts]
    if any(not p for p in prompts):
        raise EvalkitError("cannot generate from an empty prompt")
    batch, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((batch, width), eos_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    generators: list[torch.Generator | None] = [None] * batch
    if temperature > 0.0:
        generators = [torch.Generator(device=device).manual_seed(int(s)) for s in (seeds or [0] * batch)]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, logits = out.cache, out.logits[:, -1, :]
    next_pos = positions[:, -1] + 1
    active = list(range(batch))
    results: list[list[int]] = [[] for _ in range(batch)]
    for step in range(max_new_tokens):
        tokens = _select(logits.float(), temperature, top_k, [generators[r] for r in active])
        keep = []
        for j, (row, token) in enumerate(zip(active, tokens.tolist())):
            if token != eos_id:
                results[row].append(token)
                keep.append(j)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_pos, tokens = mask[index], next_pos[index], tokens[index]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                    cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1, :]
        next_pos = next_pos + 1
    return results


def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_k: int | None = None,
    seeds: Sequence[int] | None = None,
    on_batch: Callable[[list[int], list[list[int]], float], None] | None = None,
) -> list[list[int]]:
    """Generated token ids for each prompt text, batching prompts of similar length together.

    ``on_batch(indices, tokens, seconds)`` is called after each batch (to write results as they
    come). The result of each prompt does not depend on ``batch_size``.
    """
    encoded = [encode_text(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # less left padding
    results: list[list[int]] = [[] for _ in prompts]
    for start in range(0, len(order), max(1, batch_size)):
        chosen = order[start : start + max(1, batch_size)]
        began = time.perf_counter()
        tokens = generate_batch(
            model, [encoded[i] for i in chosen], max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
            seeds=[seeds[i] for i in chosen] if seeds is not None else None,
        )
        for i, t in zip(chosen, tokens):
            results[i] = t
        if on_batch:
            on_batch(chosen, tokens, time.perf_counter() - began)
    return results


# -- generate runs in the results store -----------------------------------------------------------


def model_fingerprint(spec: str | os.PathLike[str]) -> str | None:
    """A content hash of a local model's weights (None for hub ids), so a run made with other
    weights under the same name is never reused."""
    path = Path(str(spec))
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pth") or p.name == "config.json")
    else:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def generate_responses(
    model: str | Path,
    records: list[dict],
    *,
    store: ResultsStore,
    eval_set: str,
    style: str | Path | PromptStyle = "alpaca",
    max_new_tokens: int = 256,
    batch_size: int = 8,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 123,
    device: str | None = None,
    precision: str = "fp32",
    model_name: str | None = None,
    progress: bool = True,
    on_sample: Callable[[str, dict], None] | None = None,
) -> str:
    """Generate a response for every record into a ``generate`` run; returns the run id.

    A finished run with the same model (name and weights), records and settings is reused as is;
    an unfinished one is resumed (records already in the store are skipped). One sample per
    record id (``instruction_item_id``; records repeating an instruction and input share it):
    ``instruction``, ``input``, ``output`` (reference), ``response``, ``prompt``, ``tokens``
    (generated), ``seconds`` (the record's share of its batch's time). ``precision="bf16"`` casts
    the weights to bf16 (faster; responses may differ from fp32's) and is recorded in the config.
    """
    from finetune.model import load_model, tokenizer_spec_for
    from finetune.precision import inference_dtype
    from finetune.model import model_name as default_name
    from evalkit.assets import get_tokenizer

    style = get_style(style)
    dtype = inference_dtype(precision)
    name = model_name or default_name(model)
    unique: dict[str, dict] = {}
    for record in records:
        unique.setdefault(record["id"], record)
    weights_hash = model_fingerprint(model)
    config: dict[str, Any] = {
        "eval_set": eval_set,
        "records_hash": content_hash(sorted(unique)),
        "n_records": len(unique),
        "style": style.name,
        "prompt_template_hash": style.template_hash,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_k": top_k,
        "seed": seed,
        "model_hash": weights_hash,
        "precision": precision,
    }
    finished = store.find_run("generate", name, config)
    if finished is not None:
        return finished.id
    with store.start_run("generate", name, config, model_path=str(model), model_hash=weights_hash) as run:
        done = run.done_items()
        todo = [r for i, r in unique.items() if i not in done]
        if todo:
            tokenizer = get_tokenizer(tokenizer_spec_for(model))
            lm, _ = load_model(model, device=device or default_device())
            lm.to(dtype)
            lm.eval()
            prompts = [style.format_prompt(r) for r in todo]

            def write(indices: list[int], tokens: list[list[int]], seconds: float) -> None:
                samples = []
                for i, toks in zip(indices, tokens):
                    r = todo[i]
                    payload = {
                        "instruction": r["instruction"], "input": r["input"], "output": r["output"],
                        "response": style.extract_response(tokenizer.decode(toks)), "prompt": prompts[i],
                        "tokens": len(toks), "seconds": seconds / len(indices),
                    }
                    samples.append((r["id"], payload))
                run.add_samples(samples)
                for item_id, payload in samples:
                    if on_sample:
                        on_sample(item_id, payload)
                if bar is not None:
                    bar.advance(task, len(indices))

            from evalkit.output import console

            bar = task = None
            if progress:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                bar = Progress(TextColumn("generate {task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeRemainingColumn(), console=console(stderr=True), transient=True)
                task = bar.add_task(name, total=len(unique), completed=len(unique) - len(todo))
                bar.start()
            try:
                generate_texts(lm, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                               temperature=temperature, top_k=top_k,
                               seeds=[record_seed(seed, r["id"]) for r in todo], on_batch=write)
            finally:
                if bar is not None:
                    bar.stop()
        payloads = [p for _, p in run.samples()]
        seconds = sum(p["seconds"] for p in payloads)
        run.log_metrics({
            "n": len(payloads),
            "tokens_per_second": sum(p["tokens"] for p in payloads) / seconds if seconds > 0 else None,
            "avg_length": sum(len(p["response"]) for p in payloads) / len(payloads) if payloads else None,
        })
    return run.id


def write_responses_jsonl(store: ResultsStore, run_id: str, records: list[dict], path: str | Path, *, generator: str | None = None) -> Path:
    """One JSON line per record, in record order, from a generate run (written atomically)."""
    samples = dict(store.samples(run_id))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(response_line(record["id"], samples[record["id"]], generator), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def response_line(item_id: str, payload: dict, generator: str | None) -> dict:
    return {"id": item_id, "instruction": payload["instruction"], "input": payload["input"], "output": payload["output"],
            "response": payload["response"], "generator": generator, "prompt": payload["prompt"],
            "tokens": payload["tokens"], "seconds": payload["seconds"]}


def responses_for_split(
    model: str | Path,
    *,
    store: ResultsStore,
    out: str | Path | None = None,
    data: str | Path | None = None,
    split: str = "test",
    style: str | Path | None = None,
    eval_set: str | None = None,
    skip_invalid: bool = False,
    **options: Any,
) -> tuple[str, list[dict], Path | None]:
    """The ``evalkit generate`` flow: pick the records, generate into the store, write JSONL.

    For a model fine-tuned by evalkit, ``data``, ``style`` and the ``test``/``val``/``train``
    split default to what the fine-tune recorded (exactly its held-out records); otherwise the
    book's split of ``data`` is used. With ``out``, each response is appended to that JSONL file
    as it is generated and the file is rewritten in record order at the end. Returns
    ``(run id, records, jsonl path)``.
    """
    from finetune.data import load_records, select_by_ids, split_records
    from finetune.model import model_name as default_name
    from finetune.model import read_metadata

    if split not in ("test", "val", "train", "all"):
        raise EvalkitError(f"split must be test, val, train or all, not {split!r}")
    meta = read_metadata(model) if Path(str(model)).is_dir() else {}
    data = data if data is not None else meta.get("data")
    records = load_records(data, skip_invalid=skip_invalid)
    if split != "all":
        saved = (meta.get("split") or {}).get(split)
        records = select_by_ids(records, saved, source=data) if saved else split_records(records)[split]
    if style is None:
        style = PromptStyle(**meta["style"]) if meta.get("style") else "alpaca"
    label = Path(str(data)).stem if data is not None else "book-instruction-data"
    name = options.pop("model_name", None) or default_name(model)
    on_sample = None
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        handle = open(out, "a", encoding="utf-8")

        def on_sample(item_id: str, payload: dict) -> None:
            handle.write(json.dumps(response_line(item_id, payload, name), ensure_ascii=False) + "\n")
            handle.flush()

    try:
        run_id = generate_responses(model, records, store=store, eval_set=eval_set or f"{label}/{split}", style=style,
                                    model_name=name, on_sample=on_sample, **options)
    finally:
        if out is not None:
            handle.close()
    if out is not None:
        write_responses_jsonl(store, run_id, records, out, generator=name)
    return run_id, records, out
