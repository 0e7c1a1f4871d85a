"""Human votes: head-to-head record with an exact interval, and the Bradley-Terry difference."""

from __future__ import annotations

import pytest
from scipy import stats

from evalkit.compare import B_BETTER, NO_DIFFERENCE, REFUSED, comparison, compare_models
from tests.compare import builders
from tests.compare.test_compare_models import MMLU_A, MMLU_B, PREFS_A, PREFS_B, SCORES_A, SCORES_B

from evalkit.human import arena  # noqa: E402
from evalkit.metrics.bradley_terry import fit_bradley_terry  # noqa: E402

# A vs B: B wins 9 (shown left or right), A wins 2, 2 ties and 1 "both bad"; C plays both
VOTES = (
    [("A", "B", "b")] * 5 + [("B", "A", "a")] * 4 + [("A", "B", "a"), ("B", "A", "b")]
    + [("A", "B", "tie"), ("B", "A", "tie"), ("A", "B", "both_bad")]
    + [("C", "A", "a")] * 3 + [("C", "A", "b")] * 3 + [("C", "B", "b")] * 4 + [("C", "B", "a")] * 2
)


def test_head_to_head_record_exact_interval_and_bradley_terry(store):
    builders.human_run(store, VOTES[:10], rater="r1", bundle="b1")
    builders.human_run(store, VOTES[10:], rater="r2", bundle="b2")
    row = compare_models(store, "A", "B", bootstrap=200, seed=0)[0]
    assert row["mode"] == "human" and row["refused"] is None
    detail = row["detail"]
    assert (detail["a_wins"], detail["b_wins"], detail["ties"], detail["ties_policy"]) == (2, 9, 3, "excluded")
    assert row["n"] == 11
    assert (row["a"], row["b"]) == (pytest.approx(2 / 11), pytest.approx(9 / 11))
    assert row["p_value"] == pytest.approx(2 * (1 + 11 + 55) / 2048)  # exact binomial, 2 of 11
    low, high = stats.beta.ppf(0.025, 9, 3), stats.beta.ppf(0.975, 10, 2)  # Clopper-Pearson of 9/11
    assert detail["b_share_ci"] == [pytest.approx(low), pytest.approx(high)]
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(2 * low - 1), pytest.approx(2 * high - 1))
    assert row["verdict"] == NO_DIFFERENCE  # p = 0.065

    battles = arena.battles_from_store(store)
    ratings = fit_bradley_terry(battles)
    bt = detail["bradley_terry"]
    assert bt["a"] == pytest.approx(ratings["A"]) and bt["b"] == pytest.approx(ratings["B"])
    assert bt["diff"] == pytest.approx(ratings["B"] - ratings["A"]) and bt["diff"] > 0
    assert bt["ci_low"] < bt["diff"] < bt["ci_high"]
    assert bt["rounds"] == 200 and bt["battles"] == len(VOTES)


def test_progress_bar_does_not_change_the_numbers(store, capsys):
    builders.human_run(store, VOTES)
    quiet = compare_models(store, "A", "B", bootstrap=50, seed=5)
    comparison._BT_CACHE.clear()
    store._conn.execute("DELETE FROM cache")  # refit, with the bar this time
    assert compare_models(store, "A", "B", bootstrap=50, seed=5, progress=True) == quiet
    assert capsys.readouterr().out == ""  # the bar goes to stderr


def test_bradley_terry_fits_are_shared_between_pairs(store):
    builders.human_run(store, VOTES)
    comparison._BT_CACHE.clear()
    ab = compare_models(store, "A", "B", bootstrap=60)[0]["detail"]["bradley_terry"]
    cb = compare_models(store, "C", "B", bootstrap=60)[0]["detail"]["bradley_terry"]
    assert len(comparison._BT_CACHE) == 1 and cb["b"] == ab["b"]
    builders.human_run(store, [("A", "C", "a")], bundle="b9")  # new votes: refitted
    compare_models(store, "A", "B", bootstrap=60)
    assert len(comparison._BT_CACHE) == 2


def test_no_decisive_votes_is_refused_but_keeps_bradley_terry(store):
    builders.human_run(store, [("A", "B", "tie")] * 3 + [("C", "A", "a"), ("C", "B", "b"), ("A", "C", "a")])
    row = compare_models(store, "A", "B", bootstrap=100)[0]
    assert row["verdict"] == REFUSED and "no decisive head-to-head human votes" in row["refused"]
    assert row["detail"]["bradley_terry"]["battles"] == 6
    row = compare_models(store, "A", "Z", metrics=["human"], bootstrap=10)[0]
    assert row["refused"] == "no human votes on 'Z'"
    assert compare_models(store, "Y", "Z", metrics=["human"])[0]["refused"] == "no human votes on 'Y' or 'Z'"


def test_all_four_kinds_end_to_end(store):
    questions, records = builders.mmlu_questions(20), builders.instructions(10)
    builders.mmlu_run(store, "A", questions, MMLU_A)
    builders.mmlu_run(store, "B", questions, MMLU_B)
    builders.judge_score_run(store, "A", records, SCORES_A)
    builders.judge_score_run(store, "B", records, SCORES_B)
    builders.pairwise_run(store, "A", records, PREFS_A)
    builders.pairwise_run(store, "B", records, PREFS_B)
    builders.human_run(store, [("A", "B", "b")] * 30 + [("B", "A", "b")] * 2 + [("A", "B", "tie")] * 4)
    rows = compare_models(store, "A", "B", bootstrap=300)
    assert [r["mode"] for r in rows] == ["mmlu", "judge-score", "judge-pairwise", "human"]
    human = rows[3]
    assert (human["detail"]["b_wins"], human["detail"]["a_wins"]) == (30, 2)
    assert human["p_holm"] == pytest.approx(min(1, 4 * human["p_value"]))  # the smallest of four
    assert human["verdict"] == B_BETTER
    assert all(r["detail"]["holm_family_size"] == 4 for r in rows)


def test_bradley_terry_fits_kept_in_the_store_give_the_same_rows(store):
    builders.human_run(store, VOTES)
    comparison._BT_CACHE.clear()
    store._conn.execute("DELETE FROM cache")
    first = compare_models(store, "A", "B", bootstrap=80, seed=3)
    assert store._conn.execute("SELECT COUNT(*) FROM cache WHERE key LIKE 'compare/bradley-terry/%'").fetchone()[0] == 1
    comparison._BT_CACHE.clear()  # as a new `evalkit compare` process: the fits come from the store
    assert compare_models(store, "A", "B", bootstrap=80, seed=3) == first
    assert compare_models(store, "C", "B", bootstrap=80, seed=3)[0]["detail"]["bradley_terry"]["b"] == first[0]["detail"]["bradley_terry"]["b"]
    builders.human_run(store, [("A", "C", "a")], bundle="b9")  # new votes: a new fit, kept beside the old
    comparison._BT_CACHE.clear()
    assert compare_models(store, "A", "B", bootstrap=80, seed=3) != first
    assert store._conn.execute("SELECT COUNT(*) FROM cache WHERE key LIKE 'compare/bradley-terry/%'").fetchone()[0] == 2
