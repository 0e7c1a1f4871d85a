"""lm-evaluation-harness results files (``lm_eval --output_path``) for MMLU, both ways.

lm-eval names MMLU's tasks ``mmlu_<subject>``, its four category groups ``mmlu_<category>``
(``stem``, ``humanities``, ``social_sciences``, ``other``) and the whole ``mmlu``; each result has
``acc,none`` and ``acc_stderr,none``. evalkit's ``mmlu`` runs name the same numbers ``acc``,
``acc/<category>`` and ``acc/<subject>`` (stderr as lm-eval reports it, n = questions scored).
Other MMLU variants (``mmlu_continuation``, ...) are read the same way: names are taken relative
to the root group of ``group_subtasks``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from evalkit.errors import InputError
from evalkit.records import json_lines, parse_json, read_json_document, read_text
from evalkit.store import Metric, ResultsStore

RESULTS = "an lm-eval results file for MMLU tasks (a JSON object with 'results', as `lm_eval --output_path` writes it)"
SAMPLES = "lm-eval samples (JSON Lines, as `lm_eval --log_samples` writes them)"
CATEGORIES = ("stem", "humanities", "social_sciences", "other")
#: Top-level keys of the results file lm-eval 0.4.13's CLI writes, in its order.
RESULT_FILE_KEYS = (
    "results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config",
    "git_hash", "date", "pretty_env_info", "transformers_version", "lm_eval_version", "upper_git_hash",
    "tokenizer_pad_token", "tokenizer_eos_token", "tokenizer_bos_token", "eot_token_id", "max_length", "task_hashes",
    "model_source", "model_name", "model_name_sanitized", "system_instruction", "system_instruction_sha",
    "fewshot_as_multiturn", "chat_template", "chat_template_sha", "total_evaluation_time_seconds",
)


def _load(path: Path) -> dict[str, Any]:
    doc = read_json_document(path, expected=RESULTS)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise InputError(f"no 'results' object; expected {RESULTS}", path=path)
    return doc


def _object(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    """``doc[key]`` as an object ({} when absent or null), or an error naming the field."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"is a {type(value).__name__}, expected an object; expected {RESULTS}", path=path, field=key)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _accuracy(result: dict[str, Any], task: str, path: Path) -> tuple[float, float | None]:
    """(acc, stderr) of one task's result; a number that cannot be an accuracy is refused, never stored."""
    value, stderr = result["acc,none"], result.get("acc_stderr,none")
    if not _is_number(value) or not 0 <= value <= 1:
        raise InputError(f"is {value!r}; expected an accuracy between 0 and 1", path=path, field=f"results.{task}.acc,none")
    if stderr is None or stderr == "N/A":  # lm-eval writes "N/A" for a stderr it could not compute
        return float(value), None
    if not _is_number(stderr) or stderr < 0:
        raise InputError(f"is {stderr!r}; expected a standard error >= 0 or \"N/A\"", path=path, field=f"results.{task}.acc_stderr,none")
    return float(value), float(stderr)


def _count(value: Any, field: str, path: Path) -> int | None:
    """A number of questions: a whole number >= 0, or None when absent."""
    if value is None:
        return None
    if not _is_number(value) or value < 0 or value != int(value):
        raise InputError(f"is {value!r}; expected a number of questions (a whole number >= 0)", path=path, field=field)
    return int(value)


def read_results(path: str | Path) -> dict[str, Any]:
    """The MMLU numbers of an lm-eval results file: ``{"metrics": {name: Metric}, "categories":
    {subject: category}, "subject_tasks": {task: subject}, "config": {...}, ...}``.

    Every field evalkit takes is type-checked: a string, list or null where lm-eval writes a
    number is refused with the field's name, never stored as a missing or wrong number."""
    path = Path(path)
    doc = _load(path)
    results = doc["results"]
    mmlu_tasks = [t for t in results if t == "mmlu" or t.startswith("mmlu_")]
    if not mmlu_tasks:
        found = ", ".join(list(results)[:5]) or "none"
        raise InputError(f"no MMLU tasks in 'results' (found: {found}); expected {RESULTS}", path=path)
    group_subtasks = _object(doc, "group_subtasks", path)
    for group, subs in group_subtasks.items():
        if not isinstance(subs, list) or not all(isinstance(t, str) for t in subs):
            raise InputError(f"is {subs!r:.60}; expected a list of task names", path=path, field=f"group_subtasks.{group}")
    tree = {g: list(subs) for g, subs in group_subtasks.items() if g in results or g in mmlu_tasks}
    children = {t for subs in tree.values() for t in subs}
    roots = [g for g in tree if g not in children and (g == "mmlu" or g.startswith("mmlu"))]
    root = "mmlu" if "mmlu" in roots or not roots else roots[0]
    prefix = f"{root}_"
    n_samples = _object(doc, "n-samples", path)
    n_shots = _object(doc, "n-shot", path)
    config = _object(doc, "config", path)
    model_name = doc.get("model_name")
    if model_name is not None and not isinstance(model_name, str):
        raise InputError(f"is {model_name!r}; expected the model's name", path=path, field="model_name")

    def short(task: str) -> str:
        return task[len(prefix):] if task.startswith(prefix) else task.removeprefix("mmlu_")

    metrics: dict[str, Metric] = {}
    categories: dict[str, str] = {}
    subject_tasks: dict[str, str] = {}
    for task in mmlu_tasks:
        result = results[task]
        if not isinstance(result, dict) or "acc,none" not in result:
            raise InputError(f"'results.{task}' has no 'acc,none'; expected {RESULTS}", path=path, field=f"results.{task}")
        value, stderr = _accuracy(result, task, path)
        if task == root:
            name = "acc"
        elif task in tree:
            name = f"acc/{short(task)}"
            for sub in tree[task]:
                categories[short(sub)] = short(task)
        else:
            name = f"acc/{short(task)}"
            subject_tasks[task] = short(task)
        counted = n_samples.get(task)
        if counted is not None and not isinstance(counted, dict):
            raise InputError(f"is {counted!r:.60}; expected an object with 'effective'", path=path, field=f"n-samples.{task}")
        n = _count((counted or {}).get("effective"), f"n-samples.{task}.effective", path)
        if n is None:
            n = _count(result.get("sample_len"), f"results.{task}.sample_len", path)
        if n is None and isinstance(result.get("sample_count"), dict):
            n = _count(result["sample_count"].get("acc,none"), f"results.{task}.sample_count", path)
        metrics[name] = Metric(value, stderr, n)
    if "acc" not in metrics:
        raise InputError(f"no '{root}' result (the whole of MMLU); expected {RESULTS}", path=path, field="results")
    n_shot = set()
    for task, shots in n_shots.items():
        if task in mmlu_tasks:
            if not _is_number(shots) or shots < 0 or shots != int(shots):
                raise InputError(f"is {shots!r:.60}; expected a number of few-shot examples", path=path, field=f"n-shot.{task}")
            n_shot.add(int(shots))
    limit = config.get("limit")
    if limit is not None and (not _is_number(limit) or limit <= 0):
        raise InputError(f"is {limit!r:.60}; expected a positive number or null", path=path, field="config.limit")
    version = doc.get("lm_eval_version")
    if version is not None and not isinstance(version, str):
        raise InputError(f"is {version!r:.60}; expected a version string", path=path, field="lm_eval_version")
    return {
        "metrics": metrics,
        "categories": categories,
        "subject_tasks": subject_tasks,
        "config": {
            "task": root,
            "lm_eval_version": version,
            "num_fewshot": next(iter(n_shot)) if len(n_shot) == 1 else sorted(n_shot) or None,
            "limit": limit,
            "model_args": config.get("model_args"),
            "precision": _precision(config.get("model_args")),
        },
        "model_name": model_name or _pretrained(config.get("model_args")),
        "date": doc.get("date"),
    }


def _model_arg(model_args: Any, name: str) -> str | None:
    # lm-eval keeps model_args as a dict (0.4.5+) or as the "pretrained=...,dtype=..." string
    if isinstance(model_args, dict):
        value = model_args.get(name)
        return value if isinstance(value, str) else None
    if isinstance(model_args, str):
        found = re.search(rf"(?:^|,){name}=([^,]+)", model_args)
        return found.group(1) if found else None
    return None


def _pretrained(model_args: Any) -> str | None:
    return _model_arg(model_args, "pretrained")


# lm-eval's ``dtype`` model argument -> evalkit's precision; "auto" (the checkpoint's own dtype)
# and no dtype are left unrecorded, which comparability reads as fp32
_DTYPE_PRECISION = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


def _precision(model_args: Any) -> str | None:
    dtype = _model_arg(model_args, "dtype")
    return _DTYPE_PRECISION.get(dtype.removeprefix("torch.")) if dtype else None


LETTERS = ("A", "B", "C", "D")  # MMLU's doc_to_choice in lm-eval


def _prompt(arguments: Any) -> str | None:
    # files keep each request's arguments as {"gen_args_0": {"arg_0": context, "arg_1": continuation}};
    # lm-eval's in-memory samples have them as [[context, continuation], ...]
    if isinstance(arguments, dict):
        first = next(iter(arguments.values()), None)
        return first.get("arg_0") if isinstance(first, dict) else None
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], (list, tuple)):
        return arguments[0][0]
    return None


def read_logged_samples(path: str | Path, subjects: dict[str, str], categories: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Per-question samples from the ``samples_<task>_<time>.jsonl`` files ``lm_eval --log_samples``
    writes beside ``results_<time>.json`` (none when they are absent), as evalkit mmlu payloads.

    ``subjects`` maps lm-eval task names to subject names.
    """
    from evalkit.items import mmlu_item_id

    path = Path(path)
    stamp = path.stem.removeprefix("results_")
    out = []
    for task, subject in subjects.items():
        sample_file = path.with_name(f"samples_{task}_{stamp}.jsonl")
        if not sample_file.is_file():
            continue
        for lineno, line in json_lines(read_text(sample_file, expected=SAMPLES)):
            if not line.strip():
                continue
            sample = parse_json(line, shown=sample_file, line=lineno, expected=SAMPLES)
            try:
                lls = [float(resp[0]) for resp in sample["filtered_resps"]]
                pred = max(range(len(lls)), key=lls.__getitem__)  # lm-eval's argmax: the first maximum
                doc = sample["doc"]
                payload = {
                    "subject": subject,
                    "category": categories.get(subject),
                    "doc_id": int(sample["doc_id"]),
                    "question": doc["question"],
                    "choices": list(doc["choices"]),
                    "prompt": _prompt(sample.get("arguments")),
                    "loglikelihoods": lls,
                    "pred": LETTERS[pred],
                    "gold": LETTERS[int(sample["target"])],
                    "correct": bool(sample["acc"]),
                }
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise InputError(
                    f"line {lineno}: not an lm-eval MMLU sample ({type(exc).__name__}: {exc})", path=sample_file
                ) from None
            out.append((mmlu_item_id(subject, payload["doc_id"]), payload))
    return out


def import_results(store: ResultsStore, path: str | Path, *, name: str | None = None) -> str:
    """Store an lm-eval MMLU results file as an ``mmlu`` run; returns the run id. Per-question
    samples come from the ``--log_samples`` files beside it when present (else the run has
    metrics only). The same file under the same name is imported once."""
    path = Path(path)
    parsed = read_results(path)
    model = name or parsed["model_name"]
    if not model:
        raise InputError("the file names no model (model_name); pass --name", path=path)
    config = {
        "source": "lm-eval",
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        **parsed["config"],
        "categories": parsed["categories"],
    }
    existing = store.find_run("mmlu", model, config)
    if existing is not None:
        return existing.id
    samples = read_logged_samples(path, parsed["subject_tasks"], parsed["categories"])
    samples = store.check_run("mmlu", model, config, samples, parsed["metrics"], source=path)
    with store.start_run("mmlu", model, config, model_path=str(path)) as run:
        run.add_samples(samples)
        run.log_metrics(parsed["metrics"])
    return run.id


# -- export -----------------------------------------------------------------------------------


def _installed_categories() -> dict[str, str]:
    """MMLU subject -> category from lm-eval's own task files (``tag: mmlu_<category>_tasks``)."""
    try:
        import lm_eval
    except ImportError:
        return {}
    folder = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    out = {}
    for yaml_file in folder.glob("mmlu_*.yaml"):
        tag = re.search(r'"?tag"?:\s*"?mmlu_(\w+?)_tasks"?', yaml_file.read_text(encoding="utf-8"))
        if tag:
            out[yaml_file.stem.removeprefix("mmlu_")] = tag.group(1)
    return out


def _subject_categories(store: ResultsStore, run_id: str, config: dict[str, Any]) -> dict[str, str]:
    categories = dict(_installed_categories())
    categories.update(config.get("categories") or {})
    for _, p in store.samples(run_id):
        if p.get("subject") and p.get("category"):
            categories[p["subject"]] = p["category"]
    return categories


def results_document(store: ResultsStore, run_id: str) -> dict[str, Any]:
    """An mmlu run as lm-eval's results JSON (the keys its CLI writes; what evalkit does not know is null)."""
    record = store.get_run(run_id)
    if record.kind != "mmlu":
        raise InputError(f"run {record.id} has kind {record.kind!r}; the lm-eval format exports mmlu runs (lm-eval results JSON)")
    config = record.config
    root = config.get("task") or "mmlu"
    metrics = record.metrics
    if "acc" not in metrics:
        raise InputError(f"run {record.id} has no 'acc' metric; nothing to export as lm-eval results")
    known = _subject_categories(store, record.id, config)
    named = {name.split("/", 1)[1]: m for name, m in metrics.items() if name.startswith("acc/")}
    category_names = {c for c in named if c in CATEGORIES or c in set(known.values())}
    subjects = [s for s in named if s not in category_names]
    tree: dict[str, list[str]] = {root: []}
    for category in sorted(category_names):
        tree[root].append(f"{root}_{category}")
        tree[f"{root}_{category}"] = [f"{root}_{s}" for s in sorted(subjects) if known.get(s) == category]
    orphans = [f"{root}_{s}" for s in sorted(subjects) if known.get(s) not in category_names]
    tree[root].extend(orphans)

    def result(task: str, alias: str, m: Metric, group: bool) -> dict[str, Any]:
        out = {"name": task, "alias": alias, "sample_len": m.n, "acc,none": m.value,
               "acc_stderr,none": m.stderr if m.stderr is not None else "N/A"}
        if group:
            out["sample_count"] = {"acc,none": m.n}
        return out

    results: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for s in sorted(subjects):
        results[f"{root}_{s}"] = result(f"{root}_{s}", s, named[s], False)
    for category in sorted(category_names):
        groups[f"{root}_{category}"] = results[f"{root}_{category}"] = result(f"{root}_{category}", category, named[category], True)
    groups[root] = results[root] = result(root, root, metrics["acc"], True)

    leaves = [f"{root}_{s}" for s in sorted(subjects)]
    num_fewshot = config.get("num_fewshot")
    model_args = config.get("model_args") if config.get("model_args") is not None else {"pretrained": record.model}
    doc: dict[str, Any] = {key: None for key in RESULT_FILE_KEYS}
    doc.update(
        {
            "results": results,
            "groups": groups,
            "group_subtasks": {g: subs for g, subs in tree.items()},
            "configs": {t: {"task": t, "num_fewshot": num_fewshot, "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]} for t in leaves},
            "versions": {**{g: "2" for g in groups}, **{t: 1.0 for t in leaves}},
            "n-shot": {t: num_fewshot for t in [*leaves, *[g for g in groups if g != root]]},
            "higher_is_better": {t: {"acc": True} for t in [*leaves, *[g for g in groups if g != root]]},
            "n-samples": {t: {"original": named[t[len(root) + 1:]].n, "effective": named[t[len(root) + 1:]].n} for t in leaves},
            "config": {"model": "hf", "model_args": model_args, "limit": config.get("limit")},
            "date": _date(record.finished_at or record.created_at),
            "lm_eval_version": config.get("lm_eval_version"),
            "task_hashes": {},
            "model_name": record.model,
            "model_name_sanitized": re.sub(r"[\"<>:/|\\?*\[\]]+", "__", record.model or ""),
        }
    )
    return doc


def _date(iso: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None
