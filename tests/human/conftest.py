"""Fixtures for the human-rating tests: generate runs made from the book's real model outputs."""

from __future__ import annotations

import json

import pytest

from evalkit.items import instruction_item_id
from tests.conftest import shared_path

EVAL_SET = "book-ch07-eval-example"
MODELS = ("book-model-1", "book-model-2")


def add_generate_run(store, model: str, records: list[dict], field: str) -> str:
    """A finished generate run holding ``field`` of each record as the response (README payload;
    prompt, tokens and seconds are unknown for responses written elsewhere)."""
    config = {"eval_set": EVAL_SET, "source": "eval-example-data.json", "field": field}
    with store.start_run("generate", model, config) as run:
        run.add_samples(
            (
                instruction_item_id(r["instruction"], r["input"]),
                {
                    "instruction": r["instruction"],
                    "input": r["input"],
                    "output": r["output"],
                    "response": r[field],
                    "prompt": None,
                    "tokens": None,
                    "seconds": None,
                },
            )
            for r in records
        )
        run.log_metrics({"n": len(records)})
        return run.id


@pytest.fixture(scope="session")
def book_eval_records() -> list[dict]:
    """The book's 100 records answered by two fine-tuned models (`model 1/2 response`)."""
    return json.loads(shared_path("book-ch07", "eval-example-data.json").read_text(encoding="utf-8"))


@pytest.fixture
def generate_runs(store, book_eval_records) -> tuple[str, str]:
    """Two generate runs (book-model-1, book-model-2) from the book's real responses."""
    return tuple(
        add_generate_run(store, model, book_eval_records, f"model {k} response")
        for k, model in enumerate(MODELS, start=1)
    )


@pytest.fixture(scope="session")
def preference_file():
    return shared_path("book-ch07", "instruction-data-with-preference.json")
