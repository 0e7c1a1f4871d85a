"""``evalkit mmlu``: one lm-eval evaluation of the ``mmlu`` group, stored as one ``mmlu`` run.

lm-eval does the work, as a library: its task manager builds the tasks, its ``hf`` (or
``vllm``) model answers the requests and ``lm_eval.simple_evaluate`` scores and aggregates them,
with the same defaults as its command line. evalkit chooses the tasks (a subset, or a local copy
of the data), resolves the model, shows progress, and stores lm-eval's numbers and per-question
records; lm-eval's own results JSON and sample files are written beside the run.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.assets import cache_dir
from evalkit.errors import EvalkitError
from evalkit.mmlu.data import read_local_mmlu
from evalkit.mmlu.env_report import env_report_in_background
from evalkit.mmlu.model import ModelSource, build_lm, parse_model_args, resolve_model
from evalkit.mmlu.progress import attach_counter, quiet_library_bars, request_progress
from evalkit.mmlu.results import metrics_from_results, sample_payloads, summary_rows
from evalkit.mmlu.tasks import MMLU_GROUP, MmluCatalog, TaskSet, load_catalog, prepare_tasks
from evalkit.store import Metric, ResultsStore

HUB_DATASET = "cais/mmlu"


@dataclass
class MmluResult:
    run_id: str
    model: str
    metrics: dict[str, Metric]
    rows: list[dict[str, Any]]
    results_file: Path | None  # lm-eval's results JSON
    sample_files: list[Path] = field(default_factory=list)  # lm-eval's --log_samples output
    seconds: float = 0.0  # in lm_eval.simple_evaluate
    requests: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # prepare, model_load, evaluate, store (seconds)
    reused: bool = False  # a finished run with the same model (weights), data and settings, returned as is


def _require_hub_data() -> None:
    """Without --data the questions come from the hub: when it is out of reach, say so at once."""
    from evalkit.hub import hub_offline_by_env, hub_reachable

    if hub_reachable():
        return
    from evalkit.assets import MMLU_SUBSET, embedded_file

    why = "HF_HUB_OFFLINE is set" if hub_offline_by_env() else "no connection"
    raise EvalkitError(
        f"could not load lm-eval's MMLU data set {HUB_DATASET} from the Hugging Face Hub: it cannot be reached "
        f"({why}); pass --data DIR (test.jsonl laid out like cais/mmlu). evalkit ships four subjects "
        f"(high_school_computer_science, philosophy, sociology, nutrition): --data {embedded_file(MMLU_SUBSET).parent}"
    )


def _reused_result(store: ResultsStore, record, catalog: MmluCatalog) -> MmluResult:
    out = store.run_dir(record.id)
    written = sorted(out.rglob("results_*.json"))
    return MmluResult(run_id=record.id, model=record.model, metrics=record.metrics,
                      rows=summary_rows(record.metrics, catalog), results_file=written[-1] if written else None,
                      sample_files=sorted(out.rglob("samples_*.jsonl")), reused=True)


def task_manager(task_set: TaskSet, metadata: dict[str, Any] | None = None):
    from lm_eval.tasks import TaskManager

    # The task folder holds every definition the run needs (it includes lm-eval's YAML files by
    # absolute path), so lm-eval's index of its ~15,000 other tasks is skipped: that scan alone
    # takes longer than a small evaluation. The tasks built are the same either way.
    return TaskManager(include_path=str(task_set.include_path), include_defaults=False, metadata=metadata)


def select_tasks(
    catalog: MmluCatalog,
    *,
    subjects: list[str] | None = None,
    categories: list[str] | None = None,
    data: str | Path | None = None,
    num_fewshot: int = 0,
) -> tuple[TaskSet, dict[str, Any]]:
    """The task set to run and the description of its data for the run's config."""
    chosen = catalog.select(subjects, categories)
    if data is None:
        return prepare_tasks(catalog, chosen, root=cache_dir() / "mmlu-tasks"), {"source": HUB_DATASET}
    local = read_local_mmlu(data, set(catalog.subjects))
    if num_fewshot > 0 and not local.has_dev:
        raise EvalkitError(
            f"--num-fewshot {num_fewshot} needs a few-shot pool, but {local.folder} has no dev.jsonl "
            "(lm-eval's MMLU takes its examples from the dev split); use --num-fewshot 0 or add dev.jsonl"
        )
    missing = [s.name for s in chosen if s.name not in local.docs["test"]]
    if missing and (subjects or categories):
        raise EvalkitError(f"{local.files['test']}: no questions for subject(s) {', '.join(missing)}")
    # a local file may hold only some subjects: evaluate those it has
    chosen = [s for s in chosen if s.name in local.docs["test"]]
    if num_fewshot > 0:
        short = [s.name for s in chosen if len(local.docs["dev"].get(s.name, [])) < num_fewshot]
        if short:
            raise EvalkitError(f"{local.files['dev']}: fewer than {num_fewshot} few-shot examples for {', '.join(short)}")
    task_set = prepare_tasks(catalog, chosen, local=local, root=cache_dir() / "mmlu-tasks")
    return task_set, {"source": "local", "folder": str(local.folder), "sha256": local.sha256}


def load_tasks(task_set: TaskSet, *, hub: bool, metadata: dict[str, Any] | None = None):
    """lm-eval's task manager and task objects (the ``mmlu`` group), built before the model is
    loaded so that a data set that cannot be loaded fails fast. ``metadata`` is what lm-eval's
    command line hands its task manager: the model arguments."""
    manager = task_manager(task_set, metadata)
    try:
        return manager, manager.load(task_set.tasks)
    except Exception as exc:  # datasets raises many types for "cannot reach the hub"
        if not hub:
            raise
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise EvalkitError(
            f"could not load lm-eval's MMLU data set {HUB_DATASET} from the Hugging Face Hub "
            f"({type(exc).__name__}: {first}); offline, pass --data DIR with a local copy laid out like "
            "cais/mmlu (test.jsonl, optionally dev.jsonl)"
        ) from exc


def request_count(loaded: dict[str, Any], limit: int | None) -> int:
    total = 0
    for task in loaded["tasks"].values():
        docs = len(task.eval_docs)
        total += (min(docs, limit) if limit is not None else docs) * 4  # one request per choice
    return total


def _save_lm_eval_files(tracker, results: dict[str, Any], samples: dict[str, list[dict]], out: Path) -> tuple[Path | None, list[Path]]:
    """lm-eval's results JSON and per-task samples, written by lm-eval's own tracker."""
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        if task_name in samples:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    written = sorted(out.rglob("results_*.json"))
    return (written[-1] if written else None), sorted(out.rglob("samples_*.jsonl"))


_DTYPE_PRECISION = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


def precision_model_args(precision: str, model_args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(precision to record, lm-eval model arguments that apply it)``. fp32 adds nothing (lm-eval's
    own default); a ``dtype`` given in ``--model-args`` is recorded as the precision it means."""
    if precision not in ("fp32", "bf16"):
        raise EvalkitError(f"--precision must be fp32 or bf16, not {precision!r}")
    if "dtype" in model_args:
        if precision != "fp32":
            raise EvalkitError("give either --precision or dtype in --model-args, not both")
        dtype = str(model_args["dtype"]).removeprefix("torch.")
        return _DTYPE_PRECISION.get(dtype, dtype), {}
    return precision, ({"dtype": "bfloat16"} if precision == "bf16" else {})


def run_mmlu(
    store: ResultsStore,
    model: str | Path,
    *,
    subjects: list[str] | None = None,
    categories: list[str] | None = None,
    num_fewshot: int = 0,
    limit: int | None = None,
    batch_size: int | str = 1,
    device: str | None = None,
    data: str | Path | None = None,
    backend: str = "hf",
    model_args: str | None = None,
    cache: str | Path | None = None,
    precision: str = "fp32",
    progress: bool = True,
) -> MmluResult:
    """Evaluate ``model`` on MMLU with lm-eval and store the result as an ``mmlu`` run.

    ``precision="bf16"`` loads the weights in bf16 (lm-eval's ``dtype=bfloat16``): faster where
    the hardware has bf16, numbers no longer equal to fp32's; recorded in the run's config.

    ``cache`` is a folder for lm-eval's request cache: answered requests are kept there as they
    come, so an interrupted run started again with the same cache skips them.
    """
    if num_fewshot < 0:
        raise EvalkitError(f"--num-fewshot must be 0 or more, got {num_fewshot}")
    if limit is not None and limit < 1:
        raise EvalkitError(f"--limit must be 1 or more, got {limit}")
    if not (batch_size == "auto" or (isinstance(batch_size, int) and batch_size >= 1)):
        raise EvalkitError(f"--batch-size must be 'auto' or a positive integer, got {batch_size!r}")
    started = time.perf_counter()
    extra_args = parse_model_args(model_args)
    precision, precision_args = precision_model_args(precision, extra_args)
    load_args = {**extra_args, **precision_args}
    catalog = load_catalog()
    task_set, data_config = select_tasks(catalog, subjects=subjects, categories=categories, data=data, num_fewshot=num_fewshot)
    if data is None:  # after the subjects are checked: a typo is named before the missing data
        _require_hub_data()
    source: ModelSource = resolve_model(model, store=store)
    config = {  # what makes two runs' numbers comparable (and what an unfinished run is resumed by)
        "eval_set": "mmlu",
        "data": data_config,
        "subjects": sorted(s.name for s in task_set.subjects),
        "num_fewshot": num_fewshot,
        "limit": limit,
        "backend": backend,
        "model_args": extra_args,
        "precision": precision,
        "template_hash": catalog.template_hash,
        "lm_eval_version": catalog.lm_eval_version,
    }
    finished = store.find_run("mmlu", source.name, config)
    if finished is not None and finished.model_hash == source.sha256:
        return _reused_result(store, finished, catalog)  # the same model, data and settings: nothing to recompute
    with env_report_in_background():
        with quiet_library_bars() if progress else contextlib.nullcontext():
            manager, loaded = load_tasks(task_set, hub=data is None, metadata={"pretrained": source.pretrained, **extra_args})
            timings = {"prepare": time.perf_counter() - started}
            lm = build_lm(source, backend=backend, model_args=load_args, batch_size=batch_size, device=device)
            timings["model_load"] = time.perf_counter() - started - timings["prepare"]
        result = _evaluate(store, lm, source, manager, loaded, config, cache=cache, progress=progress, catalog=catalog)
    result.timings = {**timings, "evaluate": result.seconds, "store": result.timings["store"]}
    return result


def _evaluate(
    store, lm, source: ModelSource, manager, loaded, config: dict[str, Any], *, cache, progress: bool, catalog: MmluCatalog
) -> MmluResult:
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    n_requests = request_count(loaded, config["limit"])
    with store.start_run("mmlu", source.name, config, model_path=source.path, model_hash=source.sha256) as run:
        out = run.dir
        tracker = EvaluationTracker(output_path=str(out))
        started = time.perf_counter()
        with request_progress(n_requests, enabled=progress, description=f"MMLU {source.name}") as on_answer:
            attach_counter(lm, on_answer)
            results = lm_eval.simple_evaluate(
                model=lm,
                model_args={"pretrained": source.pretrained, **config["model_args"]},
                tasks=[loaded["groups"][MMLU_GROUP]],  # the group object already built (and its data loaded)
                # 0 is lm-eval's own default for MMLU; passing None spares its "overwriting" warnings
                num_fewshot=config["num_fewshot"] or None,
                limit=config["limit"],
                # lm-eval appends "_rank<N>.db" to this prefix
                use_cache=str(Path(cache) / "lm-eval-requests") if cache else None,
                log_samples=True,
                evaluation_tracker=tracker,
                task_manager=manager,
            )
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        if results is None:  # not rank 0 of a multi-process run: that rank stores nothing
            raise EvalkitError("lm-eval returned no results on this process (not rank 0)")
        samples = results.pop("samples")
        metrics = metrics_from_results(results, catalog)
        run.add_samples(sample_payloads(samples, catalog))
        run.log_metrics(metrics)
        results_file, sample_files = _save_lm_eval_files(tracker, results, samples, out)
        stored = time.perf_counter() - started
    return MmluResult(
        run_id=run.id,
        model=source.name,
        metrics=metrics,
        rows=summary_rows(metrics, catalog),
        results_file=results_file,
        sample_files=sample_files,
        seconds=seconds,
        requests=n_requests,
        timings={"store": stored},
    )
