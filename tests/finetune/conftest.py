"""Fixtures for the finetune tests: the book's data, and tiny training settings that keep a
training run to a few seconds on a busy CPU."""

from __future__ import annotations

import json

import pytest

from tests.conftest import shared_path


@pytest.fixture(scope="session")
def book_data_file():
    return shared_path("book-ch07", "instruction-data.json")


@pytest.fixture(scope="session")
def book_records(book_data_file):
    return json.loads(book_data_file.read_text(encoding="utf-8"))


# A 2-layer, 64-wide random GPT-2 on the first 30 book records, batches of 2 cut to 32 tokens.
TINY_TRAINING = dict(
    model="gpt2-tiny",
    init="random",
    limit=30,
    batch_size=2,
    max_length=32,
    epochs=1,
    max_steps=8,
    eval_every=3,
    eval_batches=2,
    save_every=2,
    progress=False,
)
