"""What ``evalkit judge`` does: check the judge, get responses (generate them, import a file,
or take a ``generate`` run), then judge."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, InputError, UnknownRunError
from evalkit.judge.eval_sets import EvalSet, load_eval_set
from evalkit.judge.runner import prepare_judge, run_judge
from evalkit.judge.templates import template_mode
from evalkit.store import ResultsStore

# what prepare_judge takes from the judge options (the rest go to run_judge only)
_SETUP_OPTIONS = ("judge_model", "backend", "hosts", "api_key_env", "prompt_template", "discrete", "seed",
                  "temperature", "num_ctx", "timeout", "retries", "retry_backoff", "refresh")


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
    finished run with the same settings is reused), a responses file imported, or ``responses``
    itself when it names a ``generate`` run rather than a file."""
    if (model is None) == (responses is None):
        raise EvalkitError("give exactly one of --model (generate responses) and --responses FILE|RUN_ID")
    if responses is not None and (run_id := _named_run(store, responses)) is not None:
        return run_id
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


def _named_run(store: ResultsStore, responses: str | Path) -> str | None:
    """The ``generate`` run ``--responses`` names when it is no file (None for a file)."""
    if Path(responses).exists():
        return None
    try:
        record = store.get_run(str(responses), with_metrics=False)
    except UnknownRunError:
        raise InputError("no such file, and no run with that id in the store (see `evalkit runs list`)",
                         path=responses) from None
    if record.kind != "generate":
        raise EvalkitError(f"run {record.id} is a {record.kind} run; --responses takes a generate run or a file")
    return record.id


def _check_sources(store: ResultsStore, model: str | None, responses: str | Path | None) -> None:
    """Check where the responses come from before the judge server is asked, so bad input is
    reported as such (a responses file is read again when it is imported)."""
    if responses is not None and _named_run(store, responses) is None:
        from evalkit.interop.responses import read_responses

        read_responses(responses)
    if model is not None and Path(model).is_dir():
        from finetune.model import is_checkpoint_dir

        if not is_checkpoint_dir(model):
            raise InputError("not a model checkpoint (a Hugging Face checkpoint folder has config.json and weights)",
                             path=model)


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
    """``evalkit judge``: returns the judge run id. ``judge_options`` go to :func:`run_judge`.

    The judge (server, model, template) is checked first, so a missing server fails in seconds
    and before minutes of generation, leaving nothing in the store."""
    chosen = load_eval_set(eval_set) if eval_set else (load_eval_set("book-test") if model else None)
    mode = (judge_options.pop("mode", None) or template_mode(judge_options.get("prompt_template"))
            or (chosen.default_mode if chosen is not None else "score"))
    # input files first (bad input is reported as such, the store unchanged), then the server
    _check_inputs(store, chosen, {**judge_options, "mode": mode})
    if (model is None) == (responses is None):
        raise EvalkitError("give exactly one of --model (generate responses) and --responses FILE|RUN_ID")
    _check_sources(store, model, responses)
    setup = prepare_judge(store, mode=mode, **{k: judge_options[k] for k in _SETUP_OPTIONS if k in judge_options})
    try:
        run_id = responses_run_for(
            store, model=model, responses=responses, eval_set=chosen, generate_options=generate_options, name=name
        )
    except BaseException:
        setup.close()
        raise
    return run_judge(store, responses_run=run_id, eval_set=chosen, mode=mode, setup=setup, **judge_options)
