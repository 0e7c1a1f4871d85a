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
