"""The items where two models differ most: what the report's comparison view drills into."""

from __future__ import annotations

from typing import Any

from evalkit.compare.comparison import preference_value
from evalkit.compare.selection import NoRuns, NotComparable, select_pair
from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore

ITEM_MODES = ("mmlu", "judge-score", "judge-pairwise")


def items_differing(
    store: ResultsStore, model_a: str, model_b: str, *, mode: str = "judge-score", limit: int | None = 20
) -> list[dict[str, Any]]:
    """Items both models were measured on, largest ``|b - a|`` first (ties in item order).

    Each dict: ``item_id``, ``a``, ``b``, ``diff`` (B - A: correct 0/1 for MMLU, the 0-100 score,
    the preference for the model over the reference in [0, 1]) and the texts behind them
    (``instruction``/``question``, ``input``, ``reference``, ``response_a``, ``response_b``).
    Items where the two agree exactly are left out. The same runs as
    :func:`evalkit.compare.compare_models` are used; a refused comparison raises its reason.
    """
    if mode not in ITEM_MODES:
        raise EvalkitError(f"items_differing compares items of {', '.join(ITEM_MODES)}, not {mode!r}")
    try:
        paired = select_pair(store, mode, model_a, model_b)
    except (NotComparable, NoRuns) as exc:
        raise EvalkitError(f"{mode}: {model_a!r} and {model_b!r} cannot be compared: {exc}") from None
    if mode == "mmlu":  # the common case at scale: 0/1 per question, without a call per item
        values = list(zip([float(bool(c)) for c in paired.column("a", "correct")],
                          [float(bool(c)) for c in paired.column("b", "correct")]))
        kept = [k for k, (a, b) in enumerate(values) if a != b]  # every gap is 1: item order
    else:
        values = [_item_values(mode, item, pa, pb, paired)
                  for item, pa, pb in zip(paired.item_ids, paired.payloads_a, paired.payloads_b)]
        kept = [k for k, v in enumerate(values) if v is not None and v[0] != v[1]]
        # largest gap first; stable, so equal gaps keep item order (texts only for the rows returned)
        kept.sort(key=lambda k: -abs(values[k][1] - values[k][0]))
    shown = kept[:limit] if limit is not None else kept
    # the paired values carry no texts: read the two runs' samples for the items shown only
    wanted = [paired.item_ids[k] for k in shown]
    texts_a, texts_b = (store.samples_of_items(run.id, wanted) if wanted else {} for run in (paired.run_a, paired.run_b))
    rows = []
    for k in shown:
        item = paired.item_ids[k]
        (a, b), pa, pb = values[k], texts_a[item], texts_b[item]
        rows.append({"item_id": item, "a": a, "b": b, "diff": b - a, **_texts(mode, pa, pb)})
    return rows


def _item_values(mode: str, item: str, pa: dict, pb: dict, paired) -> tuple[float, float] | None:
    if mode == "mmlu":
        return float(bool(pa.get("correct"))), float(bool(pb.get("correct")))
    if mode == "judge-score":
        if pa.get("score") is None or pb.get("score") is None:
            return None
        return float(pa["score"]), float(pb["score"])
    va, vb = preference_value(pa, paired.run_a, item), preference_value(pb, paired.run_b, item)
    return None if va is None or vb is None else (va - 1, vb - 1)


def _texts(mode: str, pa: dict, pb: dict) -> dict[str, Any]:
    if mode == "mmlu":
        return {
            "subject": pa.get("subject"),
            "category": pa.get("category"),
            "question": pa.get("question"),
            "choices": pa.get("choices"),
            "gold": pa.get("gold"),
            "pred_a": pa.get("pred"),
            "pred_b": pb.get("pred"),
        }
    response = "response" if mode == "judge-score" else "output_2"
    reference = "reference" if mode == "judge-score" else "output_1"
    return {
        "instruction": pa.get("instruction"),
        "input": pa.get("input"),
        "reference": pa.get(reference),
        "response_a": pa.get(response),
        "response_b": pb.get(response),
    }
