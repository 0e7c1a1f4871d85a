"""Fixtures for the interoperability tests: AlpacaEval's released annotations and leaderboard."""

from __future__ import annotations

import csv

import pytest

from tests.conftest import shared_path

ANNOTATION_MODELS = ("FuseChat-Llama-3.2-1B-Instruct", "Mixtral-8x7B-Instruct-v0.1_concise", "OpenHermes-2.5-Mistral-7B")


def annotations_path(model: str):
    return shared_path("alpaca_eval", "annotations", f"{model}.weighted_alpaca_eval_gpt4_turbo.json")


@pytest.fixture(scope="session")
def alpaca_leaderboard() -> dict[str, dict[str, str]]:
    path = shared_path("alpaca_eval", "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv")
    with path.open(newline="", encoding="utf-8") as f:
        return {row[""]: row for row in csv.DictReader(f)}


def pairwise_run(store, samples, *, model="m-small", reference="m-base", judge="llama3.1:8b") -> str:
    """A judge-pairwise run with the payload the judge writes (README's table), metrics computed."""
    from evalkit.metrics import pairwise_metrics
    from evalkit.items import instruction_item_id

    with store.start_run("judge-pairwise", model, {"judge_model": judge, "reference": reference}) as run:
        for s in samples:
            payload = {
                "instruction": s["instruction"], "input": s.get("input", ""), "output_1": s["output_1"], "generator_1": reference,
                "output_2": s["output_2"], "generator_2": model, "preference": s["preference"],
                "status": "ok" if s["preference"] is not None else "unparsed", "raw_completion": s.get("raw", "{}"),
            }
            run.add_sample(instruction_item_id(payload["instruction"], payload["input"]), payload)
        run.log_metrics(pairwise_metrics(p for _, p in run.samples()))
    return run.id


@pytest.fixture
def book_pairwise_run(store):
    """Two real models of the book (eval-example-data.json) judged against each other, with
    synthetic but fixed preferences, some unparsed and some exact ties; items keep their inputs."""
    import json

    records = json.loads(shared_path("book-ch07", "eval-example-data.json").read_text(encoding="utf-8"))[:40]
    prefs = [None if i % 13 == 5 else 1.5 if i % 7 == 3 else 1 + ((i * 37) % 101) / 100 for i in range(len(records))]
    samples = [
        {"instruction": r["instruction"], "input": r["input"], "output_1": r["model 1 response"], "output_2": r["model 2 response"], "preference": p}
        for r, p in zip(records, prefs)
    ]
    return pairwise_run(store, samples, model="model-2", reference="model-1")
