"""The metrics every mode shares, in one place:

* :mod:`evalkit.metrics.win_rate`: AlpacaEval's pairwise metrics (:func:`pairwise_metrics`), used
  by the judge's pairwise runs and by imported AlpacaEval annotations;
* :mod:`evalkit.metrics.length_control`: AlpacaEval's length-controlled win rate (GLM);
* :mod:`evalkit.metrics.bradley_terry`: Bradley-Terry ratings as Chatbot Arena fits them, used by
  ``evalkit arena``, ``compare``'s human mode and the Arena interop tests.
"""

from evalkit.metrics.bradley_terry import bootstrap_bradley_terry, fit_bradley_terry
from evalkit.metrics.length_control import length_controlled_winrate
from evalkit.metrics.win_rate import pairwise_metrics, preference_value

__all__ = ["bootstrap_bradley_terry", "fit_bradley_terry", "length_controlled_winrate", "pairwise_metrics", "preference_value"]
