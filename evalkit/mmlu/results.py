"""lm-eval's output for the ``mmlu`` group turned into evalkit metrics, samples and table rows.

Every number is lm-eval's own: the per-subject accuracy and stderr from its task results, the
category and overall figures from its group aggregation (``weight_by_size: True`` in lm-eval's
``mmlu`` YAML, so a group's accuracy is the mean over all its questions, not over subjects,
and its stderr is lm-eval's pooled stderr). Nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

from evalkit.items import mmlu_item_id
from evalkit.mmlu.tasks import MMLU_GROUP, MmluCatalog
from evalkit.store import Metric

METRIC = "acc"
FILTER = "none"  # lm-eval's key suffix for unfiltered results: "acc,none"
LETTERS = ("A", "B", "C", "D")  # lm-eval's doc_to_choice for MMLU


def _number(value: Any) -> float | None:
    # lm-eval writes "N/A" where a stderr cannot be computed (one document)
    return float(value) if isinstance(value, (int, float)) else None


def _metric(entry: dict[str, Any]) -> Metric:
    return Metric(
        _number(entry.get(f"{METRIC},{FILTER}")),
        _number(entry.get(f"{METRIC}_stderr,{FILTER}")),
        int(entry["sample_len"]) if entry.get("sample_len") is not None else None,
    )


def metrics_from_results(results: dict[str, Any], catalog: MmluCatalog) -> dict[str, Metric]:
    """``acc``, ``acc/<category>``, ``acc/<subject>`` from lm-eval's ``results`` dict."""
    table = results["results"]
    metrics: dict[str, Metric] = {}
    if MMLU_GROUP in table:
        metrics[METRIC] = _metric(table[MMLU_GROUP])
    for category in catalog.categories.values():
        if category.group in table:
            metrics[f"{METRIC}/{category.name}"] = _metric(table[category.group])
    for subject in catalog.subjects.values():
        if subject.task in table:
            metrics[f"{METRIC}/{subject.name}"] = _metric(table[subject.task])
    return metrics


def sample_payloads(samples: dict[str, list[dict[str, Any]]], catalog: MmluCatalog) -> list[tuple[str, dict[str, Any]]]:
    """One ``(item_id, payload)`` per question from lm-eval's logged samples."""
    import numpy as np

    by_task = {s.task: s for s in catalog.subjects.values()}
    out = []
    for task_name, logged in samples.items():
        subject = by_task[task_name]
        for sample in logged:
            lls = [float(resp[0]) for resp in sample["filtered_resps"]]
            pred = int(np.argmax(lls))  # exactly lm-eval's choice (first maximum wins)
            doc = sample["doc"]
            out.append(
                (
                    mmlu_item_id(subject.name, sample["doc_id"]),
                    {
                        "subject": subject.name,
                        "category": subject.category,
                        "doc_id": sample["doc_id"],
                        "question": doc["question"],
                        "choices": list(doc["choices"]),
                        "prompt": sample["arguments"][0][0],
                        "loglikelihoods": lls,
                        "pred": LETTERS[pred],
                        "gold": LETTERS[int(sample["target"])],
                        "correct": bool(sample[METRIC]),
                    },
                )
            )
    return out


def summary_rows(metrics: dict[str, Metric], catalog: MmluCatalog) -> list[dict[str, Any]]:
    """Overall, then categories (lm-eval's order), then subjects from best to worst."""
    rows = []

    def row(level: str, name: str, metric: Metric, category: str | None = None) -> dict[str, Any]:
        return {"level": level, "name": name, "category": category, "acc": metric.value, "stderr": metric.stderr, "n": metric.n}

    if METRIC in metrics:
        rows.append(row("overall", MMLU_GROUP, metrics[METRIC]))
    for category in catalog.categories.values():
        if (m := metrics.get(f"{METRIC}/{category.name}")) is not None:
            rows.append(row("category", category.name, m))
    subjects = [(s, metrics[f"{METRIC}/{s.name}"]) for s in catalog.subjects.values() if f"{METRIC}/{s.name}" in metrics]
    subjects.sort(key=lambda sm: (-(sm[1].value or 0.0), sm[0].name))
    rows.extend(row("subject", s.name, m, s.category) for s, m in subjects)
    return rows
