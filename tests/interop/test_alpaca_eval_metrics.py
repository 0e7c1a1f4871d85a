"""AlpacaEval's metrics: hand-computed cases and parity with the published leaderboard."""

from __future__ import annotations

import json
import math

import pytest

from evalkit.metrics import length_controlled_winrate, pairwise_metrics
from tests.interop.conftest import ANNOTATION_MODELS, annotations_path


def _sample(pref, out1="aaaa", out2="bb", g1="base", g2="model"):
    return {"preference": pref, "output_1": out1, "output_2": out2, "generator_1": g1, "generator_2": g2}


def test_hand_computed_case():
    # parsed preferences 2, 1, 1.5, 1.75 (the None is unparsed, 3 is not a preference)
    samples = [_sample(2.0), _sample(1.0), _sample(1.5), _sample(None), _sample(1.75), _sample(3)]
    m = pairwise_metrics(samples)
    # shifted 1, 0, .5, .75: mean .5625; sample variance .546875/3
    assert m["win_rate"].value == pytest.approx(56.25)
    assert m["standard_error"].value == pytest.approx(math.sqrt(0.546875 / 3) / 2 * 100)
    assert m["win_rate"].stderr == m["standard_error"].value
    assert (m["n_wins"].value, m["n_wins_base"].value, m["n_draws"].value, m["n_total"].value) == (2, 1, 1, 4)
    # rounded 2, 1, 1.5 (exact draw stays), 2 -> 1, 0, .5, 1
    assert m["discrete_win_rate"].value == pytest.approx(62.5)
    assert m["parse_rate"].value == pytest.approx(4 / 6)
    assert m["avg_length"].value == 2
    assert m["length_controlled_winrate"].value is None  # all lengths equal but too few items for 5 folds


def test_legacy_zero_is_a_draw_and_nan_is_unparsed():
    m = pairwise_metrics([_sample(0), _sample(2), _sample(float("nan"))])
    assert m["n_draws"].value == 1 and m["n_total"].value == 2
    assert m["win_rate"].value == pytest.approx(75.0)
    assert m["parse_rate"].value == pytest.approx(2 / 3)


def test_parse_rate_counts_only_verdicts_asked_for():
    samples = [_sample(1.5), _sample(2), _sample(None), _sample(1)]
    for s, status in zip(samples, ["identical", "ok", "unparsed", "ok"]):
        s["status"] = status
    m = pairwise_metrics(samples)
    assert m["parse_rate"].value == pytest.approx(2 / 3) and m["parse_rate"].n == 3
    assert m["n_total"].value == 3 and m["n_draws"].value == 1  # the identical pair is AlpacaEval's draw
    assert pairwise_metrics([_sample(1.5) | {"status": "identical"}])["parse_rate"].value == 1.0


def test_single_item_has_no_standard_error_and_nothing_parsed_has_no_win_rate():
    one = pairwise_metrics([_sample(2)])
    assert one["win_rate"].value == 100 and one["standard_error"].value is None
    none = pairwise_metrics([_sample(None), _sample(None)])
    assert none["win_rate"].value is None and none["n_total"].value == 0 and none["parse_rate"].value == 0


def test_avg_length_truncates_like_alpaca_eval():
    m = pairwise_metrics([_sample(2, out2="abc"), _sample(1, out2="abcd")])  # 3.5 -> 3
    assert m["avg_length"].value == 3


def test_length_control_degenerate_cases():
    prefs = [2, 1, 1.8, 1.2, 1.5, 1.9, 1.1]
    # equal lengths: no length effect to remove, the win rate itself
    assert length_controlled_winrate(prefs, [5] * 7, [5] * 7) == pytest.approx(50.0)
    assert length_controlled_winrate(prefs[:4], [1, 2, 3, 4], [4, 3, 2, 1]) is None
    same = [_sample(p, g1="m", g2="m") for p in prefs]
    assert pairwise_metrics(same)["length_controlled_winrate"].value == 50.0


def test_length_control_removes_a_pure_length_preference():
    # the judge prefers whichever output is longer; the models are otherwise the same
    samples = []
    for i in range(100):
        longer_model = i % 2 == 0
        out1, out2 = ("x" * 100, "x" * 400) if longer_model else ("x" * 400, "x" * 100)
        samples.append(_sample(1.9 if longer_model else 1.1, out1=out1, out2=out2))
    m = pairwise_metrics(samples)
    assert m["win_rate"].value == pytest.approx(50.0)
    assert m["length_controlled_winrate"].value == pytest.approx(50.0, abs=0.5)
    # shift: the model is longer more often, and wins those; length control pulls it back to ~50
    skewed = samples + [_sample(1.9, out1="x" * 100, out2="x" * 400) for _ in range(50)]
    ms = pairwise_metrics(skewed)
    assert ms["win_rate"].value > 60
    assert ms["length_controlled_winrate"].value == pytest.approx(50.0, abs=2)


@pytest.mark.parametrize("model", ANNOTATION_MODELS)
def test_parity_with_published_leaderboard(model, alpaca_leaderboard):
    records = json.loads(annotations_path(model).read_text(encoding="utf-8"))
    m = pairwise_metrics(records)
    row = alpaca_leaderboard[model]
    assert m["win_rate"].value == pytest.approx(float(row["win_rate"]), abs=1e-6)
    assert m["standard_error"].value == pytest.approx(float(row["standard_error"]), abs=1e-6)
    assert m["discrete_win_rate"].value == pytest.approx(float(row["discrete_win_rate"]), abs=1e-6)
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
        assert m[key].value == int(row[key]), key
    assert m["parse_rate"].value == 1.0
    # length_controlled_winrate is AlpacaEval's minimal GLM, not the published v1 (checked against
    # alpaca_eval itself in test_alpaca_eval_oracle.py)
