"""AlpacaEval's pairwise metrics, and its annotation files as evalkit ``judge-pairwise`` runs.

The metrics are AlpacaEval's (``alpaca_eval.metrics.get_winrate``), recomputed here so that
every judge-pairwise run, local or imported, is scored the same way:

* ``preference`` is in [1, 2], 2 = the model (``output_2``) preferred; 1.5 is a draw, and a
  legacy ``0`` means a draw too. ``None``/NaN (an unparsed verdict) and values outside [1, 2]
  are left out of every count, as AlpacaEval drops them.
* ``win_rate`` = mean(preference - 1) x 100; ``standard_error`` = its standard error of the mean
  (sample standard deviation, ddof = 1) x 100.
* ``n_wins`` / ``n_wins_base``: preference above / below 1.5; ``n_draws``: exactly 1.5;
  ``n_total``: parsed items.
* ``discrete_win_rate``: the same mean after rounding each preference to 1 or 2 (exact 1.5 stays
  a draw).
* ``avg_length``: mean number of characters of the model's outputs, truncated to an integer.
* ``length_controlled_winrate``: see :mod:`evalkit.interop.length_control` for the GLM variant.
* ``parse_rate`` (evalkit's): parsed verdicts / verdicts asked of the judge (items with status
  ``ok`` or ``unparsed``, or no status; ``identical`` pairs need no verdict).

The published AlpacaEval 2 leaderboard numbers are exactly these, computed from the released
annotation files with their weighted (token-probability) preferences as they stand: no rescaling,
percent units (tested against ``weighted_alpaca_eval_gpt4_turbo_leaderboard.csv``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import InputError
from evalkit.interop._records import is_missing_number, require_text
from evalkit.interop.length_control import VARIANT as LENGTH_CONTROL_VARIANT
from evalkit.interop.length_control import length_controlled_winrate
from evalkit.items import instruction_item_id
from evalkit.records import read_json_records
from evalkit.store import Metric, ResultsStore

ANNOTATIONS = "AlpacaEval annotations (a JSON list of objects with instruction, output_1, generator_1, output_2, generator_2, preference)"
ANNOTATION_FIELDS = ("instruction", "output_1", "generator_1", "output_2", "generator_2", "preference")


def _preference(value: Any) -> float | None:
    """A stored preference as AlpacaEval reads it: None when it is not a usable verdict."""
    if is_missing_number(value) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    if value == 0:
        return 1.5  # AlpacaEval's legacy encoding of a draw
    return value if 1 <= value <= 2 else None


def pairwise_metrics(samples: Iterable[dict[str, Any]]) -> dict[str, Metric]:
    """AlpacaEval's metrics for judge-pairwise samples (``preference``, ``output_1``, ``output_2``)."""
    samples = list(samples)
    prefs = [_preference(s.get("preference")) for s in samples]
    parsed = np.array([p for p in prefs if p is not None], dtype=float)
    n_all = len(samples)
    n_total = int(parsed.size)
    out: dict[str, Metric] = {}

    if n_total:
        shifted = parsed - 1
        win_rate = float(shifted.mean() * 100)
        # pandas' Series.sem: sample standard deviation (ddof=1) / sqrt(n); undefined for one item
        sem = float(shifted.std(ddof=1) / math.sqrt(n_total) * 100) if n_total > 1 else None
        # exact 1.5 stays a draw; anything else is rounded to the nearer verdict
        discrete = np.where(parsed == 1.5, 1.5, np.round(parsed)) - 1
        discrete_win_rate = float(discrete.mean() * 100)
    else:
        win_rate = sem = discrete_win_rate = None
    out["win_rate"] = Metric(win_rate, sem, n_total)
    out["standard_error"] = Metric(sem, None, n_total)
    out["n_wins"] = Metric(float((parsed > 1.5).sum()), None, n_total)
    out["n_wins_base"] = Metric(float((parsed < 1.5).sum()), None, n_total)
    out["n_draws"] = Metric(float((parsed == 1.5).sum()), None, n_total)
    out["n_total"] = Metric(float(n_total), None, n_total)
    out["discrete_win_rate"] = Metric(discrete_win_rate, None, n_total)

    lengths_2 = [len(s.get("output_2") or "") for s in samples]
    out["avg_length"] = Metric(float(int(np.mean(lengths_2))) if samples else None, None, n_all)

    pairs = {(s.get("generator_1"), s.get("generator_2")) for s in samples}
    if len(pairs) == 1 and (pair := next(iter(pairs)))[0] is not None and pair[0] == pair[1]:
        lc = 50.0  # the baseline against itself, by construction (as AlpacaEval does)
    else:
        lengths_1 = [len(s.get("output_1") or "") for s in samples]
        lc = length_controlled_winrate(prefs, lengths_1, lengths_2) if samples else None
    out["length_controlled_winrate"] = Metric(lc, None, n_total)
    # parse rate over the verdicts a judge was asked for: pairs settled without a call
    # (status "identical") are neither parsed nor unparsed answers
    asked = [p for s, p in zip(samples, prefs) if s.get("status", "ok") in ("ok", "unparsed")]
    n_parsed = sum(p is not None for p in asked)
    out["parse_rate"] = Metric((n_parsed / len(asked) if asked else 1.0) if samples else None, None, len(asked))
    return out


# -- import -----------------------------------------------------------------------------------


def read_annotations(path: str | Path) -> list[dict[str, Any]]:
    """AlpacaEval annotation records, validated: judge-pairwise sample payloads in file order."""
    path = Path(path)
    records = [record.value for record in read_json_records(path, expected=ANNOTATIONS)]
    if not any("preference" in r for r in records):
        keys = ", ".join(sorted(records[0])[:8])
        raise InputError(
            f"no 'preference' field in any record (found: {keys}); expected {ANNOTATIONS}. "
            "A file of model outputs goes to `evalkit import responses`.",
            path=path,
        )
    payloads = []
    for index, record in enumerate(records):
        text = {
            key: require_text(record, key, path=path, index=index, expected=ANNOTATIONS, default="" if key.startswith("output") else None)
            for key in ("instruction", "output_1", "generator_1", "output_2", "generator_2")
        }
        if "preference" not in record:
            raise InputError(f"missing; expected {ANNOTATIONS}", path=path, record=index, field="preference")
        raw_pref = record["preference"]
        if not is_missing_number(raw_pref) and (
            isinstance(raw_pref, bool) or not isinstance(raw_pref, (int, float)) or _preference(raw_pref) is None
        ):
            raise InputError(
                f"is {raw_pref!r}; expected a number in [1, 2] (2 = generator_2 preferred), 0 for a draw, or null",
                path=path,
                record=index,
                field="preference",
            )
        preference = _preference(raw_pref)
        instruction, input_text = split_alpaca_instruction(record, text["instruction"])
        payloads.append(
            {
                "instruction": instruction,
                "input": input_text,
                "output_1": text["output_1"],
                "generator_1": text["generator_1"],
                "output_2": text["output_2"],
                "generator_2": text["generator_2"],
                "preference": preference,
                "status": "ok" if preference is not None else "unparsed",
                # alpaca_eval's evaluate() writes it prefixed with the annotation key
                "raw_completion": record.get("raw_completion", record.get("preference_raw_completion")),
                "annotator": record.get("annotator"),
                "dataset": record.get("dataset"),
            }
        )
    return payloads


def _single(values: set[Any], what: str, path: Path) -> Any:
    if len(values) != 1:
        shown = ", ".join(sorted(map(str, values))[:5])
        raise InputError(f"{len(values)} different {what} ({shown}); expected one model against one baseline per file", path=path)
    return next(iter(values))


def import_annotations(store: ResultsStore, path: str | Path, *, name: str | None = None) -> str:
    """Store an AlpacaEval annotations file as a ``judge-pairwise`` run; returns the run id.

    The model is ``name`` or the file's ``generator_2``. Importing the same file under the same
    name again returns the run already stored.
    """
    path = Path(path)
    payloads = read_annotations(path)
    model = name or _single({p["generator_2"] for p in payloads}, "generator_2 values", path)
    baseline = _single({p["generator_1"] for p in payloads}, "generator_1 values", path)
    annotators = sorted({str(p["annotator"]) for p in payloads if p["annotator"] is not None})
    config = {
        "source": "alpaca-eval",
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "generator_2": _single({p["generator_2"] for p in payloads}, "generator_2 values", path),
        "reference": baseline,
        "judge_model": ",".join(annotators) or None,
        "length_control": LENGTH_CONTROL_VARIANT,
    }
    existing = store.find_run("judge-pairwise", model, config)
    if existing is not None:
        return existing.id
    samples = _unique_items(payloads, path)
    metrics = pairwise_metrics(p for _, p in samples)
    samples = store.check_run("judge-pairwise", model, config, samples, metrics, source=path)
    with store.start_run("judge-pairwise", model, config, model_path=str(path)) as run:
        run.add_samples(samples)
        run.log_metrics(metrics)
    return run.id


def _unique_items(payloads: list[dict[str, Any]], path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(item_id, payload); an instruction that appears twice is an error (it would be one item)."""
    seen: dict[str, int] = {}
    out = []
    for index, payload in enumerate(payloads):
        item_id = instruction_item_id(payload["instruction"], payload["input"])
        if item_id in seen:
            raise InputError(
                f"same instruction as record {seen[item_id]}; an instruction can be judged once per file",
                path=path,
                record=index,
                field="instruction",
            )
        seen[item_id] = index
        out.append((item_id, payload))
    return out


# -- export -----------------------------------------------------------------------------------

#: Key order of AlpacaEval's annotations.json (as its ``evaluate`` writes them).
EXPORT_ANNOTATION_KEYS = (
    "instruction", "output_1", "generator_1", "dataset", "output_2", "generator_2", "annotator", "preference", "raw_completion",
)


def alpaca_instruction(instruction: str, input: str) -> str:  # noqa: A002 - the field's name
    """The task as AlpacaEval's judge must see it: AlpacaEval has no ``input`` field, so a
    non-empty input follows the instruction after a blank line (the Alpaca prompt's order)."""
    return f"{instruction}\n\n{input}" if input else instruction


def split_alpaca_instruction(record: dict[str, Any], instruction: str) -> tuple[str, str]:
    """Inverse of :func:`alpaca_instruction` for files evalkit wrote (they keep ``input`` too)."""
    input_text = record.get("input")
    if isinstance(input_text, str) and input_text and instruction.endswith(f"\n\n{input_text}"):
        return instruction[: -len(input_text) - 2], input_text
    return instruction, input_text if isinstance(input_text, str) else ""


def reference_name(config: dict[str, Any]) -> str | None:
    """The reference model's name from a judge-pairwise run's config (a name, or {"source": name})."""
    reference = config.get("reference")
    if isinstance(reference, dict):
        reference = reference.get("source")
    return reference if isinstance(reference, str) else None


def annotation_records(store: ResultsStore, run_id: str) -> list[dict[str, Any]]:
    """A judge-pairwise run as AlpacaEval annotation records (unparsed verdicts: ``preference`` null)."""
    record = store.get_run(run_id, with_metrics=False)
    if record.kind != "judge-pairwise":
        raise InputError(
            f"run {record.id} has kind {record.kind!r}; the alpaca-eval format exports judge-pairwise runs "
            "(annotations.json) and generate runs (model_outputs.json)"
        )
    config = record.config
    out = []
    for _, p in store.samples(record.id):
        row = {
            "instruction": alpaca_instruction(p.get("instruction") or "", p.get("input") or ""),
            "output_1": p.get("output_1") or "",
            "generator_1": p.get("generator_1") or reference_name(config),
            "dataset": p.get("dataset"),
            "output_2": p.get("output_2") or "",
            "generator_2": p.get("generator_2") or record.model,
            "annotator": p.get("annotator") or (config.get("judge_model") if isinstance(config.get("judge_model"), str) else None),
            "preference": _preference(p.get("preference")),
            "raw_completion": p.get("raw_completion"),
        }
        if p.get("input"):
            row["input"] = p["input"]
        out.append(row)
    return out


def model_output_records(store: ResultsStore, run_id: str) -> list[dict[str, Any]]:
    """A generate run as AlpacaEval's ``model_outputs.json`` records (``instruction``, ``output``,
    ``generator``, ``dataset``), the file ``alpaca_eval --model_outputs`` reads."""
    record = store.get_run(run_id, with_metrics=False)
    if record.kind != "generate":
        raise InputError(
            f"run {record.id} has kind {record.kind!r}; the alpaca-eval format exports generate runs "
            "(model_outputs.json) and judge-pairwise runs (annotations.json)"
        )
    eval_set = record.config.get("eval_set")
    default_dataset = eval_set if isinstance(eval_set, str) and eval_set else "evalkit"
    out = []
    for _, p in store.samples(record.id):
        row = {
            "instruction": alpaca_instruction(p.get("instruction") or "", p.get("input") or ""),
            "output": p.get("response") or "",
            "generator": record.model or p.get("generator") or record.id,
            "dataset": p.get("dataset") or default_dataset,
        }
        if p.get("input"):
            row["input"] = p["input"]
        out.append(row)
    return out
