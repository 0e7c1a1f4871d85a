"""MMLU through lm-evaluation-harness, used as a library.

Public API:

* :func:`run_mmlu`: evaluate a model and store an ``mmlu`` run; returns :class:`MmluResult`.
* :func:`load_catalog`: lm-eval's installed MMLU subjects and categories (:class:`MmluCatalog`).
* :func:`select_tasks`, :func:`load_tasks`: the task definitions evalkit hands lm-eval (a
  folder usable with ``lm_eval --include_path``) and lm-eval's task objects built from them.
* :func:`read_local_mmlu`: a local copy of the data set (``test.jsonl``, ``dev.jsonl``), checked.
* :func:`resolve_model`: what ``--model`` names.
"""

from evalkit.mmlu.data import LocalMmlu, read_local_mmlu
from evalkit.mmlu.model import BACKENDS, ModelSource, resolve_model
from evalkit.mmlu.results import metrics_from_results, sample_payloads, summary_rows
from evalkit.mmlu.runner import MmluResult, load_tasks, run_mmlu, select_tasks
from evalkit.mmlu.tasks import Category, MmluCatalog, Subject, TaskSet, load_catalog, write_task_dir

__all__ = [
    "BACKENDS",
    "Category",
    "LocalMmlu",
    "MmluCatalog",
    "MmluResult",
    "ModelSource",
    "Subject",
    "TaskSet",
    "load_catalog",
    "load_tasks",
    "metrics_from_results",
    "read_local_mmlu",
    "resolve_model",
    "run_mmlu",
    "sample_payloads",
    "select_tasks",
    "summary_rows",
    "write_task_dir",
]
