"""``generate`` runs in the results store: responses of a model to an eval set, resumable.

The decoding itself is :mod:`finetune.generate`'s (pure generation, no store); this module
decides which records to generate, records the run's settings, writes each batch's responses as
they come and reuses a finished run with the same model, records and settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.hashing import content_hash
from evalkit.schema import model_hash
from evalkit.store import ResultsStore
from finetune.generate import default_device, generate_texts, record_seed
from finetune.prompts import PromptStyle, get_style


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
    model_name: str | None = None,
    progress: bool = True,
    on_sample: Callable[[str, dict], None] | None = None,
) -> str:
    """Generate a response for every record into a ``generate`` run; returns the run id.

    A finished run with the same model (name and weights), records and settings is reused as is;
    an unfinished one is resumed (records already in the store are skipped). One sample per
    record id (``instruction_item_id``; records repeating an instruction and input share it):
    ``instruction``, ``input``, ``output`` (reference), ``response``, ``prompt``, ``tokens``
    (generated), ``seconds`` (the record's share of its batch's time).
    """
    from finetune.model import load_model, tokenizer_spec_for
    from finetune.model import model_name as default_name
    from evalkit.assets import get_tokenizer

    style = get_style(style)
    name = model_name or default_name(model)
    unique: dict[str, dict] = {}
    for record in records:
        unique.setdefault(record["id"], record)
    weights_hash = model_hash(model, cache=store)
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
    }
    if not unique:
        raise EvalkitError(f"no records to answer in {eval_set}")
    finished = store.find_run("generate", name, config)
    if finished is not None:
        return finished.id
    # the model and tokenizer are loaded before the run is created, so a checkpoint that cannot
    # be loaded or a --max-new-tokens it cannot hold leaves the store as it was
    tokenizer = get_tokenizer(tokenizer_spec_for(model))
    lm, _ = load_model(model, device=device or default_device())
    lm.eval()
    context = getattr(lm.config, "n_positions", None)
    if context is not None and max_new_tokens >= context:
        raise EvalkitError(
            f"--max-new-tokens {max_new_tokens} is not below the model's context length ({context} tokens); "
            "the prompt needs room too"
        )
    with store.start_run("generate", name, config, model_path=str(model), model_hash=weights_hash) as run:
        done = run.done_items()
        todo = [r for i, r in unique.items() if i not in done]
        if todo:
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
