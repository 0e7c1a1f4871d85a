"""Agreement, Cohen's kappa, inter-rater agreement and accuracy on hand-computed cases."""

from __future__ import annotations

import pytest

from evalkit.human.agreement import (
    Vote,
    accuracy_vs_truth,
    agreement_report,
    agreement_stats,
    cohen_kappa,
    inter_rater_agreement,
    judge_human_agreement,
    pair_key,
)


def test_agreement_and_kappa_by_hand():
    x = ["first", "first", "second", "tie"]
    y = ["first", "second", "second", "tie"]
    stats = agreement_stats(x, y)
    # observed 3/4; chance: x marginals (2,1,1)/4, y marginals (1,2,1)/4 -> (2+2+1)/16 = 5/16
    assert stats["n"] == 4
    assert stats["agreement"] == pytest.approx(0.75)
    assert stats["kappa"] == pytest.approx((0.75 - 5 / 16) / (1 - 5 / 16))
    # without ties: the pairs (f,f), (f,s), (s,s)
    assert stats["n_without_ties"] == 3
    assert stats["agreement_without_ties"] == pytest.approx(2 / 3)


def test_kappa_edge_cases():
    assert cohen_kappa([], []) is None
    # both sides always say "first": chance agreement is 1, kappa undefined
    assert cohen_kappa(["first"] * 3, ["first"] * 3) is None
    # perfect disagreement between two labels used equally: kappa = -1
    assert cohen_kappa(["first", "second"], ["second", "first"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="unknown label"):
        agreement_stats(["a"], ["b"])


def key(item: str) -> tuple[str, ...]:
    return pair_key(item, "", "m1", f"{item} by m1", "m2", f"{item} by m2")


def test_judge_human_agreement_compares_every_human_vote_with_the_judge():
    judge = [Vote(key("q1"), "judge:j", "first"), Vote(key("q2"), "judge:j", "second"), Vote(key("q3"), "judge:j", "tie")]
    humans = [
        Vote(key("q1"), "ann", "first"),
        Vote(key("q1"), "bob", "second"),
        Vote(key("q2"), "ann", "second"),
        Vote(key("q3"), "ann", "first"),
        Vote(key("q4"), "ann", "first"),  # the judge did not see q4
    ]
    stats = judge_human_agreement(judge, humans)
    assert stats["n"] == 4 and stats["pairs"] == 3
    assert stats["agreement"] == pytest.approx(2 / 4)
    assert stats["n_without_ties"] == 3
    assert stats["agreement_without_ties"] == pytest.approx(2 / 3)
    # judge (f, f, s, t) vs humans (f, s, s, f): po = 1/2; pe = (2*2 + 1*2 + 1*0)/16 = 6/16
    assert stats["kappa"] == pytest.approx((0.5 - 6 / 16) / (1 - 6 / 16))


def test_inter_rater_agreement_over_rater_pairs():
    votes = [
        Vote(key("q1"), "ann", "first"), Vote(key("q1"), "bob", "first"), Vote(key("q1"), "cy", "second"),
        Vote(key("q2"), "ann", "second"), Vote(key("q2"), "bob", "second"),
        Vote(key("q3"), "ann", "tie"), Vote(key("q3"), "cy", "tie"),
        Vote(key("q4"), "bob", "first"),  # rated by one rater only: no comparison
    ]
    stats = inter_rater_agreement(votes)
    # comparisons: q1 ann/bob =, ann/cy !=, bob/cy !=; q2 ann/bob =; q3 ann/cy =
    assert stats["n"] == 5
    assert stats["agreement"] == pytest.approx(3 / 5)
    assert stats["n_without_ties"] == 4 and stats["agreement_without_ties"] == pytest.approx(2 / 4)
    assert stats["raters"] == 3
    pairs = {(r["rater_1"], r["rater_2"]): r for r in stats["by_rater_pair"]}
    assert pairs[("ann", "bob")]["n"] == 2 and pairs[("ann", "bob")]["agreement"] == 1.0
    assert pairs[("ann", "bob")]["kappa"] == pytest.approx(1.0)
    assert pairs[("bob", "cy")]["n"] == 1 and pairs[("bob", "cy")]["agreement"] == 0.0
    # ann/cy: (f, t) vs (s, t): po 1/2, pe = (1*0 + 0*1 + 1*1)/4 = 1/4 -> kappa 1/3
    assert pairs[("ann", "cy")]["kappa"] == pytest.approx(1 / 3)
    # Light's kappa: mean of the defined pairwise kappas (bob/cy: one label each, kappa 0)
    defined = [r["kappa"] for r in stats["by_rater_pair"] if r["kappa"] is not None]
    assert stats["kappa"] == pytest.approx(sum(defined) / len(defined))


def test_accuracy_against_known_answers():
    truth = {key("q1"): "m1", key("q2"): "m2", key("q3"): "m1"}
    votes = [
        Vote(key("q1"), "ann", "first"),   # right
        Vote(key("q2"), "ann", "first"),   # wrong
        Vote(key("q3"), "ann", "tie"),     # a tie is not right
        Vote(key("q9"), "ann", "first"),   # no known answer: not counted
        Vote(key("q1"), "judge:j", "first"),
    ]
    rows = {r["rater"]: r for r in accuracy_vs_truth(votes, truth)}
    assert rows["ann"]["n"] == 3 and rows["ann"]["correct"] == 1
    assert rows["ann"]["accuracy"] == pytest.approx(1 / 3)
    assert rows["ann"]["accuracy_without_ties"] == pytest.approx(1 / 2)
    assert rows["judge:j"]["accuracy"] == 1.0


def test_report_from_the_store_matches_pairs_across_sides(store):
    """A human saw m2 on the left; the judge had m1 as output_1: still the same pair."""
    common = {"instruction": "Name a colour.", "input": "", "response_a": "x", "response_b": "y"}
    with store.start_run("human", "m1 vs m2", {"bundle": "t"}) as run:
        run.add_samples([
            ("p1/ann", {**common, "pair_id": "p1", "rater": "ann", "outcome": "a", "model_a": "m2", "model_b": "m1"}),
            ("p1/bob", {**common, "pair_id": "p1", "rater": "bob", "outcome": "both_bad", "model_a": "m2", "model_b": "m1"}),
        ])
    with store.start_run("judge-pairwise", "m1", {"judge_model": "qwen"}) as run:
        run.add_sample("i1", {"instruction": "Name a colour.", "input": "", "output_1": "y", "generator_1": "m1",
                              "output_2": "x", "generator_2": "m2", "preference": 2.0, "status": "ok"})
        # same instruction and models, other responses: another pair, not compared
        run.add_sample("i2", {"instruction": "Name a colour.", "input": "", "output_1": "red", "generator_1": "m1",
                              "output_2": "blue", "generator_2": "m2", "preference": 1.0, "status": "ok"})
        judge_id = run.id
    report = agreement_report(store)
    assert report["votes"] == 2
    (judge,) = report["judge_human"]
    assert judge["run"] == judge_id and judge["judge"] == "qwen"
    # judge: m2 better; ann: m2 (shown as a) better -> agree; bob: both bad -> tie, disagree
    assert judge["n"] == 2 and judge["agreement"] == 0.5
    assert judge["n_without_ties"] == 1 and judge["agreement_without_ties"] == 1.0
    assert report["inter_rater"]["n"] == 1 and report["inter_rater"]["agreement"] == 0.0
