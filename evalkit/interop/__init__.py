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

from evalkit.interop.alpaca_eval import import_annotations, read_annotations
from evalkit.interop.arena import battles_from_run, import_battles, read_battles
from evalkit.interop.lm_eval_format import import_results, read_results
from evalkit.interop.responses import import_responses, read_responses
from evalkit.metrics import length_controlled_winrate, pairwise_metrics

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
