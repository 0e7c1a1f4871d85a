"""Agreement between raters, between an LLM judge and people, and with known answers.

Votes on the same pair (instruction, two models, their two responses) are compared whichever
side each model was shown on: every vote becomes a label relative to the pair's models in sorted order
(``first`` won, ``second`` won, ``tie``; "both bad" is a tie, as in the ratings).

Agreement follows MT-bench (Zheng et al. 2023, FastChat ``compute_agreement.py``): the share of
compared vote pairs with the same label, "with ties" over all of them and "without ties" over
those where neither vote is a tie. Cohen's kappa (scikit-learn) corrects the first for chance on
the three labels. Several raters: every two votes on the same pair by different raters are one
comparison; per rater pair we give Cohen's kappa and overall Light's kappa, their mean.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.errors import EvalkitError
from evalkit.items import instruction_item_id
from evalkit.hashing import content_hash

if TYPE_CHECKING:
    from evalkit.store import ResultsStore

LABELS = ("first", "second", "tie")


@dataclass(frozen=True)
class Vote:
    """One verdict on one pair: ``key`` = (item id, first model, second model, responses hash),
    models sorted."""

    key: tuple[str, str, str, str]
    rater: str
    label: str  # "first", "second" or "tie"


def pair_key(
    instruction: str, input_text: str | None, model_x: str, response_x: str, model_y: str, response_y: str
) -> tuple[str, str, str, str]:
    """Identifies "the same pair" across bundles and judge runs: the same instruction, the same
    two models and the same two responses (whitespace at the ends ignored: some tools strip it;
    one instruction can occur twice in a data set with other responses)."""
    (first, r_first), (second, r_second) = sorted(((str(model_x), response_x), (str(model_y), response_y)))
    texts = content_hash([str(r_first or "").strip(), str(r_second or "").strip()])
    return (instruction_item_id(instruction, input_text or ""), first, second, texts)


def label_for(key: tuple[str, ...], winner: str | None) -> str:
    """``winner`` is the winning model's name, or None for a tie."""
    if winner is None:
        return "tie"
    if winner == key[1]:
        return "first"
    if winner == key[2]:
        return "second"
    raise ValueError(f"{winner!r} is not one of the pair's models {key[1]!r}, {key[2]!r}")


# -- statistics on two aligned label lists ------------------------------------------------------


def cohen_kappa(x: Sequence[str], y: Sequence[str]) -> float | None:
    """Cohen's kappa (scikit-learn) on the three labels; None where it is undefined (no votes,
    or both sides used a single label so chance agreement is 1)."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    if not x:
        return None
    with warnings.catch_warnings():
        # undefined cases come back as NaN (-> None) without a warning per rater pair
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        value = cohen_kappa_score(list(x), list(y), labels=list(LABELS))
    return None if value is None or math.isnan(value) else float(value)


def agreement_stats(x: Sequence[str], y: Sequence[str]) -> dict[str, Any]:
    """``n``, ``agreement`` (with ties), ``n_without_ties``, ``agreement_without_ties`` and
    ``kappa`` for two aligned lists of labels."""
    if len(x) != len(y):
        raise ValueError("label lists differ in length")
    for label in itertools.chain(x, y):
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
    n = len(x)
    same = sum(a == b for a, b in zip(x, y))
    decided = [(a, b) for a, b in zip(x, y) if a != "tie" and b != "tie"]
    return {
        "n": n,
        "agreement": same / n if n else None,
        "n_without_ties": len(decided),
        "agreement_without_ties": sum(a == b for a, b in decided) / len(decided) if decided else None,
        "kappa": cohen_kappa(x, y),
    }


# -- votes from the store -----------------------------------------------------------------------


def human_votes(store: ResultsStore, run_ids: Iterable[str] | None = None) -> tuple[list[Vote], dict[tuple, str]]:
    """Votes of ``human`` runs and the known answers (key -> winning model) where a bundle made
    from preference data carried one (``chosen`` in the payload)."""
    if run_ids is None:
        runs = [r for r in store.list_runs(kind="human") if r.status == "done"]
    else:
        runs = [store.get_run(rid, with_metrics=False) for rid in run_ids]
    votes: list[Vote] = []
    truth: dict[tuple, str] = {}
    for run in runs:
        if run.kind != "human":
            raise EvalkitError(f"run {run.id} is a {run.kind} run, not a human run")
        for _, p in store.samples(run.id):
            if p.get("instruction") is None or not p.get("model_a") or not p.get("model_b"):
                continue  # e.g. battles imported without the instruction: nothing to match on
            key = pair_key(p["instruction"], p.get("input"), p["model_a"], p.get("response_a"), p["model_b"], p.get("response_b"))
            side = {"a": p["model_a"], "b": p["model_b"]}
            votes.append(Vote(key, str(p.get("rater")), label_for(key, side.get(p.get("outcome")))))
            if p.get("chosen") in side:
                truth[key] = side[p["chosen"]]
    return votes, truth


def judge_votes(store: ResultsStore, run_id: str) -> list[Vote]:
    """Votes of one ``judge-pairwise`` run (unparsed answers left out)."""
    from evalkit.human.arena import _preference_winner

    run = store.get_run(run_id, with_metrics=False)
    if run.kind != "judge-pairwise":
        raise EvalkitError(f"run {run.id} is a {run.kind} run, not a judge-pairwise run")
    rater = f"judge:{run.config.get('judge_model') or run.model or run.id}"
    votes = []
    for _, p in store.samples(run.id):
        winner = _preference_winner(p.get("preference"))
        if winner is None or p.get("instruction") is None:
            continue
        key = pair_key(p["instruction"], p.get("input"), p["generator_1"], p.get("output_1"), p["generator_2"], p.get("output_2"))
        model = {"model_a": p["generator_1"], "model_b": p["generator_2"]}.get(winner)
        votes.append(Vote(key, rater, label_for(key, model)))
    return votes


# -- reports ------------------------------------------------------------------------------------


def judge_human_agreement(judge: Sequence[Vote], humans: Sequence[Vote]) -> dict[str, Any]:
    """The judge's vote against every human vote on the same pair."""
    by_key = {v.key: v.label for v in judge}
    pairs = [(by_key[h.key], h.label) for h in humans if h.key in by_key]
    stats = agreement_stats([p[0] for p in pairs], [p[1] for p in pairs])
    stats["pairs"] = len({h.key for h in humans if h.key in by_key})
    return stats


def inter_rater_agreement(votes: Sequence[Vote]) -> dict[str, Any]:
    """Every two votes by different raters on the same pair, overall and per rater pair."""
    by_key: dict[tuple, dict[str, str]] = defaultdict(dict)
    for v in votes:
        by_key[v.key][v.rater] = v.label  # one vote per rater and pair (import keeps the last)
    per_pair: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for labels in by_key.values():
        for r1, r2 in itertools.combinations(sorted(labels), 2):
            per_pair[(r1, r2)][0].append(labels[r1])
            per_pair[(r1, r2)][1].append(labels[r2])
    xs = [label for pair in per_pair.values() for label in pair[0]]
    ys = [label for pair in per_pair.values() for label in pair[1]]
    overall = agreement_stats(xs, ys)
    raters = []
    for (r1, r2), (x, y) in sorted(per_pair.items()):
        raters.append({"rater_1": r1, "rater_2": r2, **agreement_stats(x, y)})
    kappas = [r["kappa"] for r in raters if r["kappa"] is not None]
    overall["kappa"] = sum(kappas) / len(kappas) if kappas else None  # Light's kappa
    overall["raters"] = len({v.rater for v in votes})
    overall["by_rater_pair"] = raters
    return overall


def accuracy_vs_truth(votes: Sequence[Vote], truth: dict[tuple, str]) -> list[dict[str, Any]]:
    """Per rater (or judge): how often the vote picked the known better response.

    ``accuracy`` counts a tie as wrong; ``accuracy_without_ties`` leaves ties out.
    """
    by_rater: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for v in votes:
        if v.key in truth:
            by_rater[v.rater].append((v.label, label_for(v.key, truth[v.key])))
    rows = []
    for rater, pairs in sorted(by_rater.items()):
        correct = sum(a == b for a, b in pairs)
        decided = [(a, b) for a, b in pairs if a != "tie"]
        rows.append(
            {
                "rater": rater,
                "n": len(pairs),
                "correct": correct,
                "accuracy": correct / len(pairs),
                "n_without_ties": len(decided),
                "accuracy_without_ties": sum(a == b for a, b in decided) / len(decided) if decided else None,
            }
        )
    return rows


def agreement_report(
    store: ResultsStore,
    *,
    human_runs: Sequence[str] | None = None,
    judge_runs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Inter-rater agreement, judge-human agreement for every judge run that shares pairs with
    the human votes (all ``judge-pairwise`` runs when ``judge_runs`` is None), and accuracy
    against known answers where the bundle had them."""
    humans, truth = human_votes(store, human_runs)
    if not humans:
        raise EvalkitError("no human votes in the store: import ratings with `evalkit pairs import`")
    if judge_runs is None:
        judge_runs = [r.id for r in store.list_runs(kind="judge-pairwise") if r.status == "done"]
    judges = []
    judge_votes_all: list[Vote] = []
    for rid in judge_runs:
        votes = judge_votes(store, rid)
        stats = judge_human_agreement(votes, humans)
        if stats["n"]:
            judges.append({"run": rid, "judge": votes[0].rater.removeprefix("judge:"), **stats})
            judge_votes_all.extend(votes)
    return {
        "votes": len(humans),
        "inter_rater": inter_rater_agreement(humans),
        "judge_human": judges,
        "accuracy": accuracy_vs_truth([*humans, *judge_votes_all], truth) if truth else [],
    }
