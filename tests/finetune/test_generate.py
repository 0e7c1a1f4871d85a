"""Generation: batched KV-cache decoding equals the book's one-at-a-time loop; generate runs
are resumable and reusable."""

from __future__ import annotations

import json

import pytest
import torch

from evalkit.items import instruction_item_id
from evalkit.generate_run import generate_responses
from finetune import book_generate, format_prompt, generate_batch, load_model, load_records, split_records
from finetune.dataset import encode_text


@pytest.fixture(scope="module")
def tiny_model(tiny_gpt2):
    model, _ = load_model(tiny_gpt2)
    return model.eval()


@pytest.fixture(scope="module")
def prompts(book_data_file, tiktoken_gpt2):
    records = load_records(book_data_file)[:6]
    return [encode_text(tiktoken_gpt2, format_prompt(r)) for r in records]


def test_batched_kv_cache_equals_unbatched_and_the_books_generate(tiny_model, prompts):
    assert len({len(p) for p in prompts}) >= 3  # real left padding
    batched = generate_batch(tiny_model, prompts, max_new_tokens=10)
    one_by_one = [generate_batch(tiny_model, [p], max_new_tokens=10)[0] for p in prompts]
    books = [book_generate(tiny_model, torch.tensor([p]), 10, 1024, eos_id=50256)[0, len(p):].tolist() for p in prompts]
    assert batched == one_by_one == books
    assert all(len(t) == 10 for t in batched)


def test_rows_stop_at_the_end_token_independently(tiny_model, prompts):
    first = generate_batch(tiny_model, prompts[:4], max_new_tokens=6)
    eos = first[0][2]  # a token row 0 emits: make it the end token, so row 0 stops early
    batched = generate_batch(tiny_model, prompts[:4], max_new_tokens=6, eos_id=eos)
    alone = [generate_batch(tiny_model, [p], max_new_tokens=6, eos_id=eos)[0] for p in prompts[:4]]
    books = [book_generate(tiny_model, torch.tensor([p]), 6, 1024, eos_id=eos)[0, len(p):].tolist() for p in prompts[:4]]
    assert batched == alone == books
    assert batched[0] == first[0][: first[0].index(eos)]
    for row, tokens in zip(first, batched):
        assert tokens == (row[: row.index(eos)] if eos in row else row)


def test_sampling_is_seeded_per_record_not_per_batch(tiny_model, prompts):
    seeds = list(range(100, 100 + len(prompts)))
    together = generate_batch(tiny_model, prompts, max_new_tokens=6, temperature=1.0, top_k=50, seeds=seeds)
    alone = [generate_batch(tiny_model, [p], max_new_tokens=6, temperature=1.0, top_k=50, seeds=[s])[0] for p, s in zip(prompts, seeds)]
    assert together == alone
    assert together != generate_batch(tiny_model, prompts, max_new_tokens=6)  # it did sample


def test_generate_run_is_resumable_and_reused(tiny_gpt2, book_data_file, store):
    records = split_records(load_records(book_data_file)[:60])["test"]
    assert len(records) == 6
    calls = []

    def stop_after_two(item_id, payload):
        calls.append(item_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C after two records were stored

    options = dict(store=store, eval_set="book/test", max_new_tokens=6, batch_size=1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        generate_responses(tiny_gpt2, records, on_sample=stop_after_two, **options)
    (partial,) = store.list_runs(kind="generate")
    assert partial.status == "interrupted" and store.sample_count(partial.id) == 2
    resumed = []
    run_id = generate_responses(tiny_gpt2, records, on_sample=lambda i, p: resumed.append(i), batch_size=4,
                                **{k: v for k, v in options.items() if k != "batch_size"})
    assert run_id == partial.id and len(resumed) == 4 and set(resumed).isdisjoint(calls)
    samples = dict(store.samples(run_id))
    assert list(samples) == calls + resumed  # the two stored before Ctrl-C were kept, not redone
    assert set(samples) == {instruction_item_id(r["instruction"], r["input"]) for r in records}
    # the same responses as an uninterrupted run, and README's payload and metrics
    fresh = generate_responses(tiny_gpt2, records, **options | {"eval_set": "book/test-again"})
    assert {i: p["response"] for i, p in store.samples(fresh)} == {i: p["response"] for i, p in samples.items()}
    payload = samples[records[0]["id"]]
    assert set(payload) == {"instruction", "input", "output", "response", "prompt", "tokens", "seconds"}
    assert payload["prompt"] == format_prompt(records[0]) and payload["tokens"] == 6
    run = store.get_run(run_id)
    assert run.status == "done" and run.metrics["n"].value == 6
    assert run.metrics["avg_length"].value == pytest.approx(sum(len(p["response"]) for p in samples.values()) / 6)
    assert run.config["style"] == "alpaca" and run.config["max_new_tokens"] == 6
    # finished: the same call returns the same run without generating anything
    assert generate_responses(tiny_gpt2, records, on_sample=lambda *a: pytest.fail("regenerated"), **options) == run_id


def test_generate_cli_uses_the_finetunes_test_split(tmp_path, tiny_gpt2, book_data_file, run_cli):
    # a fine-tune directory: the tiny model plus evalkit's metadata naming its split
    import shutil

    model_dir = tmp_path / "my-sft"
    shutil.copytree(tiny_gpt2, model_dir)
    records = load_records(book_data_file)
    test_ids = [records[5]["id"], records[2]["id"], records[9]["id"]]
    meta = {"name": "my-sft", "data": str(book_data_file), "split": {"test": test_ids, "train": [], "val": []},
            "style": {"name": "phi3", "prompt": "<|user|>\n{instruction}", "input": "\n{input}", "response": "\n<|assistant|>:\n{output}"}}
    (model_dir / "evalkit_finetune.json").write_text(json.dumps(meta))
    out = tmp_path / "responses.jsonl"
    rc, stdout, stderr = run_cli("generate", "--model", model_dir, "--out", out, "--max-new-tokens", "5", "--no-progress")
    assert rc == 0, stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == test_ids
    assert lines[0]["prompt"] == format_prompt(records[5], "phi3") and lines[0]["generator"] == "my-sft"
    assert {"instruction", "input", "output", "response", "tokens", "seconds"} <= set(lines[0])
    run_id = stdout.strip()
    rc, stdout, _ = run_cli("runs", "show", run_id, "--format", "json")
    shown = json.loads(stdout)
    assert shown["kind"] == "generate" and shown["model"] == "my-sft" and shown["samples"] == 3
    assert shown["config"]["eval_set"] == "instruction-data/test" and shown["config"]["style"] == "phi3"
