"""Fixtures for judge tests: the loopback Ollama server (see fake_ollama.py) and generate
runs made from the book's real test-split responses."""

from __future__ import annotations

import json

import pytest

from evalkit.items import instruction_item_id
from tests.conftest import shared_path
from tests.judge.fake_ollama import FakeOllama


@pytest.fixture
def fake_ollama():
    """A running :class:`FakeOllama` serving ``llama3``; stopped after the test."""
    with FakeOllama(models={"llama3": {}}) as server:
        yield server


@pytest.fixture(scope="session")
def book_responses() -> list[dict]:
    """The book's 110 test records with ``model_response`` from its fine-tuned GPT-2 medium."""
    return json.loads(shared_path("book-ch07", "instruction-data-with-response.json").read_text())


def add_generate_run(store, records, *, model="gpt2-medium-sft", response_key="model_response", eval_set="book-test"):
    """Store ``records`` as a finished ``generate`` run (the shape finetune writes); returns its id."""
    with store.start_run("generate", model, {"eval_set": eval_set, "n": len(records)}) as run:
        run.add_samples(
            (
                instruction_item_id(r["instruction"], r.get("input") or ""),
                {
                    "instruction": r["instruction"],
                    "input": r.get("input") or "",
                    "output": r.get("output") or "",
                    "response": r[response_key],
                },
            )
            for r in records
        )
    return run.id
