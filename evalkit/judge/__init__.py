"""LLM-as-judge through Ollama: the book's 0-100 score and AlpacaEval-style pairwise verdicts.

Public API:

* :func:`run_judge`: judge a ``generate`` run, store a ``judge-score`` / ``judge-pairwise`` run.
* :func:`load_eval_set`, :class:`EvalSet`: ``book-test``, ``alpaca-eval`` or a file.
* :class:`OllamaJudgeClient`, :func:`resolve_hosts`: the Ollama side (hosts, preflight,
  retries, cache), usable on its own.
* :func:`load_template`, :func:`parse_template`: versioned prompt templates.
"""

from evalkit.judge.eval_sets import EvalSet, load_eval_set
from evalkit.judge.ollama_client import JudgeServerError, OllamaJudgeClient, resolve_hosts
from evalkit.judge.runner import run_judge, score_metrics
from evalkit.judge.templates import Template, load_template, parse_template
from evalkit.judge.verdicts import weighted_preference

__all__ = [
    "EvalSet",
    "JudgeServerError",
    "OllamaJudgeClient",
    "Template",
    "load_eval_set",
    "load_template",
    "parse_template",
    "resolve_hosts",
    "run_judge",
    "score_metrics",
    "weighted_preference",
]
