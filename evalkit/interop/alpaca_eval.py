"""AlpacaEval's annotation files as evalkit ``judge-pairwise`` runs, and runs as its files.

The metrics (win rate, standard error, length-controlled win rate...) are AlpacaEval's, computed
for every judge-pairwise run by :mod:`evalkit.metrics.win_rate`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from evalkit.errors import InputError
from evalkit.interop._records import is_missing_number, require_text
from evalkit.metrics.length_control import VARIANT as LENGTH_CONTROL_VARIANT
from evalkit.metrics.win_rate import pairwise_metrics
from evalkit.metrics.win_rate import preference_value as _preference
from evalkit.items import instruction_item_id
from evalkit.records import read_json_records
from evalkit.store import ResultsStore

ANNOTATIONS = "AlpacaEval annotations (a JSON list of objects with instruction, output_1, generator_1, output_2, generator_2, preference)"
ANNOTATION_FIELDS = ("instruction", "output_1", "generator_1", "output_2", "generator_2", "preference")


# -- import -----------------------------------------------------------------------------------


def read_annotations(path: str | Path) -> list[dict[str, Any]]:
    """AlpacaEval annotation records, validated: judge-pairwise sample payloads in file order."""
    path = Path(path)
    # AlpacaEval writes its annotations through pandas, which spells "no value" NaN
    records = [record.value for record in read_json_records(path, expected=ANNOTATIONS, nan_as_null=True)]
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
