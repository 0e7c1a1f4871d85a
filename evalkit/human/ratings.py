"""Import the ``ratings-<rater>.jsonl`` files the rating page exports into a ``human`` run.

One ``human`` run per bundle: importing more files later (another rater, a later export) adds to
the same run. Every line is checked before anything is stored; errors name the file and line.
A rater who rated the same pair twice keeps the later rating (file order, then line order), and
the import says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import InputError
from evalkit.human.arena import OUTCOME_TO_WINNER
from evalkit.human.bundle import load_key
from evalkit.items import instruction_item_id
from evalkit.records import JsonSyntaxError, json_lines, parse_json, read_text

if TYPE_CHECKING:
    from evalkit.store import ResultsStore

OUTCOMES = tuple(OUTCOME_TO_WINNER)  # a, b, tie, both_bad
_MAX_ERRORS_SHOWN = 20
RATINGS = "ratings exported by the rating page (ratings-<rater>.jsonl, one JSON object a line)"


@dataclass
class Rating:
    rater: str
    pair_id: str
    outcome: str
    comment: str
    timestamp: str | None
    seconds: float | None
    where: str  # "FILE, line N"


@dataclass
class ImportResult:
    run_id: str
    bundle: str
    votes_read: int
    votes_in_run: int
    raters: list[str]
    notices: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)


def _check_line(record: Any, where: str, pairs: dict[str, Any], bundle: str) -> tuple[Rating | None, list[str]]:
    if not isinstance(record, dict):
        return None, [f"{where}: expected a JSON object, got {type(record).__name__}"]
    errors = []
    rater = record.get("rater")
    if not isinstance(rater, str) or not rater.strip():
        errors.append(f"{where}: field 'rater' is missing or empty")
    pair_id = record.get("pair_id")
    if not isinstance(pair_id, str):
        errors.append(f"{where}: field 'pair_id' is missing")
    elif pair_id not in pairs:
        errors.append(f"{where}: unknown pair id {pair_id!r} (ratings from another bundle? this key is bundle {bundle})")
    outcome = record.get("outcome")
    if outcome not in OUTCOMES:
        errors.append(f"{where}: unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    comment = record.get("comment")
    if comment is not None and not isinstance(comment, str):
        errors.append(f"{where}: field 'comment' is not a string")
    seconds = record.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))):
        errors.append(f"{where}: field 'seconds' is not a number")
    timestamp = record.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        errors.append(f"{where}: field 'timestamp' is not a string")
    if errors:
        return None, errors
    return Rating(rater.strip(), pair_id, outcome, comment or "", timestamp, None if seconds is None else float(seconds), where), []


def read_ratings(files: list[str | Path], key: dict[str, Any]) -> tuple[list[Rating], list[str]]:
    """Checked ratings (one per rater and pair: the last one) and notices about duplicates.

    Raises InputError listing every bad line (file and line) if any line is bad.
    """
    pairs, bundle = key["pairs"], key.get("bundle")
    kept: dict[tuple[str, str], Rating] = {}
    errors: list[str] = []
    notices: list[str] = []
    for path in map(Path, files):
        text = read_text(path, expected=RATINGS)
        for lineno, line in json_lines(text):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                record = parse_json(line, shown=path, line=lineno)
            except JsonSyntaxError as exc:
                errors.append(f"{where}: malformed JSON ({exc.reason} at column {exc.column})")
                continue
            except InputError as exc:  # NaN, a lone surrogate, nesting too deep: named by the reader
                errors.append(str(exc))
                continue
            rating, problems = _check_line(record, where, pairs, bundle)
            errors.extend(problems)
            if rating is None:
                continue
            previous = kept.get((rating.rater, rating.pair_id))
            if previous is not None:
                notices.append(
                    f"{where}: {rating.rater!r} rated pair {rating.pair_id} again (first at {previous.where}); "
                    "keeping this later rating"
                )
                del kept[(rating.rater, rating.pair_id)]  # re-insert so order follows the kept line
            kept[(rating.rater, rating.pair_id)] = rating
    if len(errors) == 1:
        raise InputError(f"{errors[0]}; nothing was imported")
    if errors:
        shown = errors[:_MAX_ERRORS_SHOWN]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise InputError(
            f"{len(errors)} bad rating line(s); nothing was imported:\n  " + "\n  ".join(shown) + more
        )
    return list(kept.values()), notices


def vote_payload(rating: Rating, entry: dict[str, Any], bundle: str) -> dict[str, Any]:
    """The ``human`` sample payload (README table)."""
    payload = {
        "pair_id": rating.pair_id,
        "rater": rating.rater,
        "outcome": rating.outcome,
        "model_a": entry["a"],
        "model_b": entry["b"],
        "instruction": entry["instruction"],
        "input": entry.get("input") or "",
        "response_a": entry["response_a"],
        "response_b": entry["response_b"],
        "comment": rating.comment,
        "timestamp": rating.timestamp,
        "seconds": rating.seconds,
        "bundle": bundle,
        "item_id": entry.get("item_id") or instruction_item_id(entry["instruction"], entry.get("input") or ""),
    }
    if entry.get("chosen") in ("a", "b"):
        payload["chosen"] = entry["chosen"]
    return payload


def _run_metrics(store: ResultsStore, run_id: str) -> dict[str, float | None]:
    from evalkit.human.agreement import accuracy_vs_truth, human_votes, inter_rater_agreement

    votes, truth = human_votes(store, [run_id])
    raters = {v.rater for v in votes}
    metrics: dict[str, float | None] = {"n_votes": float(len(votes)), "n_raters": float(len(raters))}
    inter = inter_rater_agreement(votes)
    if inter["n"]:
        metrics["inter_rater_agreement"] = inter["agreement"]
        metrics["inter_rater_kappa"] = inter["kappa"]
    if truth:
        rows = accuracy_vs_truth(votes, truth)
        n = sum(r["n"] for r in rows)
        metrics["accuracy"] = sum(r["correct"] for r in rows) / n if n else None
    return metrics


def import_ratings(store: ResultsStore, key_path: str | Path, files: list[str | Path]) -> ImportResult:
    """Check and store the ratings files of one bundle in its ``human`` run."""
    from evalkit.store import Metric

    if not files:
        raise InputError("no ratings files given (ratings-<rater>.jsonl, exported by rate.html)")
    key = load_key(key_path)
    bundle = key["bundle"]
    ratings, notices = read_ratings(list(files), key)
    if not ratings:
        raise InputError("no ratings in " + ", ".join(map(str, files)))
    models = key.get("models") or sorted({e["a"] for e in key["pairs"].values()} | {e["b"] for e in key["pairs"].values()})
    model = " vs ".join(models)
    config = {"bundle": bundle, "models": models, "source": key.get("source")}
    samples = [
        (f"{r.pair_id}/{r.rater}", vote_payload(r, key["pairs"][r.pair_id], bundle)) for r in ratings
    ]
    existing = store.find_run("human", model, config)
    if existing is not None:
        stored = dict(store.samples(existing.id))
        for item_id, payload in samples:
            old = stored.get(item_id)
            if old is not None and old.get("outcome") != payload["outcome"]:
                notices.append(
                    f"{payload['rater']!r} on pair {payload['pair_id']}: replacing the stored rating "
                    f"{old.get('outcome')!r} with {payload['outcome']!r}"
                )
        run_id = existing.id
        store.write_samples(run_id, store.check_run("human", model, config, samples, source=key_path))
    else:
        samples = store.check_run("human", model, config, samples, source=", ".join(map(str, files)))
        with store.start_run("human", model, config) as run:
            run.add_samples(samples)
            run_id = run.id
    metrics = _run_metrics(store, run_id)
    store.write_metrics(run_id, {name: Metric(value, None, int(metrics["n_votes"] or 0)) for name, value in metrics.items()})
    return ImportResult(
        run_id=run_id,
        bundle=bundle,
        votes_read=len(ratings),
        votes_in_run=int(metrics["n_votes"] or 0),
        raters=sorted({r.rater for r in ratings}),
        notices=notices,
        metrics=metrics,
    )
