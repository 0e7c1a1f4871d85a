"""Fixtures for the finetune tests: the book's data, and tiny training settings that keep a
training run to a few seconds on a busy CPU."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import shared_path


# Many processes share this machine's cores: one thread per process avoids threads spinning on
# each other (several times faster here), and subprocesses (CLI, torchrun) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def book_data_file():
    return shared_path("book-ch07", "instruction-data.json")


@pytest.fixture(scope="session")
def book_records(book_data_file):
    return json.loads(book_data_file.read_text(encoding="utf-8"))


# A 2-layer, 64-wide random GPT-2 on the first 30 book records, batches of 2 cut to 32 tokens,
# in fp32 (the book's numbers, and exact equality between runs on any machine).
TINY_TRAINING = dict(
    precision="fp32",
    model="gpt2-tiny",
    init="random",
    limit=30,
    batch_size=2,
    max_length=32,
    epochs=1,
    max_steps=6,
    eval_every=3,
    eval_batches=2,
    save_every=2,
    progress=False,
)
