"""Interoperability: read and write the files of AlpacaEval, Chatbot Arena and lm-eval.

Public API:

* :func:`pairwise_metrics`, :func:`length_controlled_winrate`: AlpacaEval's win-rate metrics
  (they live in :mod:`evalkit.metrics`; listed here for importers of AlpacaEval files).
* :func:`import_annotations`, :func:`read_annotations`: AlpacaEval annotation files.
* :func:`read_responses`, :func:`import_responses`: files of model responses (the book's,
  AlpacaEval's ``model_outputs.json``).
* :func:`import_results`, :func:`read_results`: lm-eval MMLU results files.
* :func:`import_battles`, :func:`read_battles`, :func:`battles_from_run`: Chatbot Arena battles.
* Exports are listed in :data:`evalkit.runs_export.EXPORT_FORMATS` (``alpaca-eval``, ``arena``,
  ``lm-eval``; see :mod:`evalkit.interop.exports`).
"""

from importlib import import_module
from typing import Any

# name -> module; imported on first use, so `evalkit runs list` (which registers the exporters
# through evalkit.interop.exports) does not pay for numpy and pandas
_LAZY = {
    "import_annotations": "evalkit.interop.alpaca_eval", "read_annotations": "evalkit.interop.alpaca_eval",
    "battles_from_run": "evalkit.interop.arena", "import_battles": "evalkit.interop.arena", "read_battles": "evalkit.interop.arena",
    "import_results": "evalkit.interop.lm_eval_format", "read_results": "evalkit.interop.lm_eval_format",
    "import_responses": "evalkit.interop.responses", "read_responses": "evalkit.interop.responses",
    "length_controlled_winrate": "evalkit.metrics", "pairwise_metrics": "evalkit.metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evalkit.interop' has no attribute {name!r}")


__all__ = [
    "battles_from_run",
    "import_annotations",
    "import_battles",
    "import_responses",
    "import_results",
    "length_controlled_winrate",
    "pairwise_metrics",
    "read_annotations",
    "read_battles",
    "read_responses",
    "read_results",
]
