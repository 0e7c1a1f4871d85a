"""Real AlpacaEval 2 annotations: two models judged against the same GPT-4 Turbo baseline."""

from __future__ import annotations

import csv

import pytest

from evalkit.compare import B_BETTER, compare_models, items_differing
from tests.compare import builders
from tests.conftest import shared_path

FUSECHAT = "FuseChat-Llama-3.2-1B-Instruct"
OPENHERMES = "OpenHermes-2.5-Mistral-7B"
MIXTRAL = "Mixtral-8x7B-Instruct-v0.1_concise"


def _annotations(model: str):
    return shared_path("alpaca_eval", "annotations", f"{model}.weighted_alpaca_eval_gpt4_turbo.json")


def _leaderboard() -> dict[str, float]:
    path = shared_path("alpaca_eval", "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv")
    with path.open(newline="") as handle:
        return {row[""]: float(row["win_rate"]) for row in csv.DictReader(handle)}


@pytest.mark.parametrize(("model_a", "model_b"), [(OPENHERMES, FUSECHAT), (FUSECHAT, MIXTRAL), (MIXTRAL, OPENHERMES)])
def test_paired_difference_equals_difference_of_published_win_rates(store, model_a, model_b):
    for model in (model_a, model_b):
        builders.annotations_run(store, _annotations(model))
    row = compare_models(store, model_a, model_b, bootstrap=2000, seed=0)[0]
    published = _leaderboard()
    assert row["mode"] == "judge-pairwise" and row["n"] == 805
    assert row["a"] == pytest.approx(published[model_a], abs=1e-9)
    assert row["b"] == pytest.approx(published[model_b], abs=1e-9)
    assert row["diff"] == pytest.approx(published[model_b] - published[model_a], abs=1e-9)
    assert row["ci_low"] < row["diff"] < row["ci_high"]
    assert row["detail"]["reference"] == "gpt4_1106_preview"


def test_imported_with_the_interop_importer(store):
    """The same through `evalkit import alpaca-eval` (the interop helper's importer)."""
    from evalkit.interop import alpaca_eval

    run_b = alpaca_eval.import_annotations(store, _annotations(FUSECHAT))
    run_a = alpaca_eval.import_annotations(store, _annotations(OPENHERMES))
    model_a, model_b = (store.get_run(r).model for r in (run_a, run_b))
    row = compare_models(store, model_a, model_b, bootstrap=2000)[0]
    win_a, win_b = (store.get_run(r).metrics["win_rate"].value for r in (run_a, run_b))
    assert row["refused"] is None and row["n"] == 805
    assert row["diff"] == pytest.approx(win_b - win_a, abs=1e-9)
    assert row["detail"]["stored_win_rate"] == {"a": pytest.approx(win_a), "b": pytest.approx(win_b)}
    assert row["verdict"] == B_BETTER


def test_model_against_the_baseline_itself_is_a_head_to_head(store):
    builders.annotations_run(store, _annotations(FUSECHAT))
    row = compare_models(store, "gpt4_1106_preview", FUSECHAT, bootstrap=2000)[0]
    assert row["refused"] is None and row["n"] == 805
    assert row["b"] == pytest.approx(_leaderboard()[FUSECHAT], abs=1e-9)  # FuseChat's win rate over the baseline
    assert row["a"] == pytest.approx(100 - row["b"])
    assert row["verdict"] == "A better"  # GPT-4 Turbo wins 570 of 805
    assert (row["detail"]["b_wins"], row["detail"]["a_wins"]) == (233, 570)


def test_real_items_where_they_differ_most(store):
    for model in (OPENHERMES, FUSECHAT):
        builders.annotations_run(store, _annotations(model))
    items = items_differing(store, OPENHERMES, FUSECHAT, mode="judge-pairwise", limit=5)
    assert len(items) == 5
    assert all(abs(i["diff"]) > 0.99 for i in items)  # one model won outright where the other lost
    assert items[0]["instruction"] and items[0]["response_a"] != items[0]["response_b"]
