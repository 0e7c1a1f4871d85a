"""What ``evalkit judge`` does: get responses (generate them, or import a file), then judge."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.judge.eval_sets import EvalSet, load_eval_set
from evalkit.judge.runner import run_judge
from evalkit.store import ResultsStore


def responses_run_for(
    store: ResultsStore,
    *,
    model: str | None,
    responses: str | Path | None,
    eval_set: EvalSet | None,
    generate_options: dict[str, Any] | None = None,
    name: str | None = None,
) -> str:
    """A ``generate`` run id: responses generated with ``finetune`` for the eval set (a
    finished run with the same settings is reused), or a responses file imported."""
    if (model is None) == (responses is None):
        raise EvalkitError("give exactly one of --model (generate responses) and --responses FILE")
    if responses is not None:
        from evalkit.interop.responses import import_responses, read_responses

        records, field = read_responses(responses)
        generators = {r["generator"] for r in records if r["generator"]}
        if name is None:
            # the model's name: the file's one generator, else the file's name
            name = next(iter(generators)) if len(generators) == 1 else Path(responses).stem
        print(f"{responses}: {len(records)} responses of {name!r}, read from field {field!r}", file=sys.stderr)
        return import_responses(store, responses, name=name)
    from evalkit.generate_run import generate_responses

    assert eval_set is not None
    options = {"model_name": name, **(generate_options or {})}
    return generate_responses(model, eval_set.records, store=store, eval_set=eval_set.name, **options)


def _check_inputs(store: ResultsStore, eval_set: EvalSet | None, judge_options: dict[str, Any]) -> None:
    """Read the judge's own input files before the responses run is stored or generated, so a bad
    template or reference file fails with the store as it was (run_judge reads them again)."""
    from evalkit.interop.responses import read_responses
    from evalkit.judge.templates import load_template

    mode = judge_options.get("mode") or (eval_set.default_mode if eval_set is not None else "score")  # as run_judge
    if judge_options.get("prompt_template") is not None and mode in ("score", "pairwise"):
        load_template(judge_options["prompt_template"], mode)
    reference = judge_options.get("reference")
    if isinstance(reference, (str, Path)) and (Path(reference).exists() or Path(reference).suffix in (".json", ".jsonl", ".csv")):
        read_responses(reference)
    elif isinstance(reference, str):
        store.get_run(reference, with_metrics=False)  # a generate run's id: UnknownRunError when there is none


def judge(
    store: ResultsStore,
    *,
    model: str | None = None,
    responses: str | Path | None = None,
    eval_set: str | None = None,
    generate_options: dict[str, Any] | None = None,
    name: str | None = None,
    **judge_options: Any,
) -> str:
    """``evalkit judge``: returns the judge run id. ``judge_options`` go to :func:`run_judge`."""
    chosen = load_eval_set(eval_set) if eval_set else (load_eval_set("book-test") if model else None)
    _check_inputs(store, chosen, judge_options)
    run_id = responses_run_for(
        store, model=model, responses=responses, eval_set=chosen, generate_options=generate_options, name=name
    )
    return run_judge(store, responses_run=run_id, eval_set=chosen, **judge_options)
