"""Interoperability: read and write the files of AlpacaEval, Chatbot Arena and lm-eval.

Public API:

* :func:`pairwise_metrics`: AlpacaEval's win-rate metrics for judge-pairwise samples.
* :func:`import_annotations`, :func:`read_annotations`: AlpacaEval annotation files.
* :func:`read_responses`, :func:`import_responses`: files of model responses (the book's,
  AlpacaEval's ``model_outputs.json``).
"""

from evalkit.interop.alpaca_eval import import_annotations, pairwise_metrics, read_annotations
from evalkit.interop.length_control import length_controlled_winrate
from evalkit.interop.responses import import_responses, read_responses

__all__ = [
    "import_annotations",
    "import_responses",
    "length_controlled_winrate",
    "pairwise_metrics",
    "read_annotations",
    "read_responses",
]
