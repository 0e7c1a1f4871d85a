"""LLM-as-judge through Ollama or OpenAI-compatible servers: 0-100 scores and AlpacaEval-style pairwise verdicts.

Public API:

* :func:`run_judge`: judge a ``generate`` run, store a ``judge-score`` / ``judge-pairwise`` run.
* :func:`load_eval_set`, :class:`EvalSet`: ``book-test``, ``alpaca-eval`` or a file.
* :func:`prepare_judge`: check a judge (server, model, template) before any work.
* :func:`make_provider` (``ollama`` or ``openai``), :class:`OllamaJudgeClient`: the judge
  backends (hosts, preflight, retries, cache), usable on their own.
* :func:`load_template`, :func:`parse_template`: named and versioned prompt templates.
* :func:`parse_score`: the strict reading of a 0-100 score.
"""

from evalkit.judge.eval_sets import EvalSet, load_eval_set
from evalkit.judge.providers import JudgeServerError, make_provider
from evalkit.judge.providers.ollama import OllamaJudgeClient, resolve_hosts
from evalkit.judge.runner import prepare_judge, run_judge, score_metrics
from evalkit.judge.scores import parse_score
from evalkit.judge.templates import Template, load_template, parse_template
from evalkit.judge.verdicts import weighted_preference

__all__ = [
    "EvalSet",
    "JudgeServerError",
    "OllamaJudgeClient",
    "Template",
    "load_eval_set",
    "load_template",
    "make_provider",
    "parse_score",
    "parse_template",
    "prepare_judge",
    "resolve_hosts",
    "run_judge",
    "score_metrics",
    "weighted_preference",
]
