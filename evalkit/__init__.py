"""evalkit: decide, with evidence, which instruction-tuned checkpoint is better.

Public API (everything else is private and may change):

* :class:`ResultsStore`, :class:`Run`, :class:`RunRecord`, :class:`Metric`: the results store every mode writes to.
* :mod:`evalkit.schema`: what a run of each kind holds (``RUN_KINDS``, :func:`validate_sample`,
  :func:`comparability_key`, :func:`model_hash`, :class:`SchemaError`).
* :func:`pick_runs`: which run stands for a model, shared by compare, leaderboard and report.
* :func:`get_tokenizer`, :func:`resolve_data`: offline-aware assets.
* :class:`EvalkitError`, :class:`InputError`: user-facing errors.

Names are imported on first use (PEP 562), so importing one module (``evalkit.errors`` from
``finetune``) does not pull in the results store.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version
from typing import TYPE_CHECKING, Any

try:
    __version__ = _version("evalkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

_EXPORTS = {
    "get_tokenizer": "evalkit.assets",
    "resolve_data": "evalkit.assets",
    "EvalkitError": "evalkit.errors",
    "InputError": "evalkit.errors",
    "Metric": "evalkit.store",
    "ResultsStore": "evalkit.store",
    "Run": "evalkit.store",
    "RunRecord": "evalkit.store",
    "RUN_KINDS": "evalkit.schema",
    "SchemaError": "evalkit.schema",
    "comparability_key": "evalkit.schema",
    "model_hash": "evalkit.schema",
    "validate_sample": "evalkit.schema",
    "pick_runs": "evalkit.selection",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from evalkit.assets import get_tokenizer, resolve_data
    from evalkit.errors import EvalkitError, InputError
    from evalkit.schema import RUN_KINDS, SchemaError, comparability_key, model_hash, validate_sample
    from evalkit.selection import pick_runs
    from evalkit.store import Metric, ResultsStore, Run, RunRecord
