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

from __future__ import annotations

import importlib
from typing import Any

# name -> module: imported on first use, so `import evalkit.judge.scores` (the CLI's help text)
# does not load the Ollama and OpenAI clients
_EXPORTS = {
    "EvalSet": "evalkit.judge.eval_sets",
    "load_eval_set": "evalkit.judge.eval_sets",
    "JudgeServerError": "evalkit.judge.providers",
    "make_provider": "evalkit.judge.providers",
    "OllamaJudgeClient": "evalkit.judge.providers.ollama",
    "resolve_hosts": "evalkit.judge.providers.ollama",
    "prepare_judge": "evalkit.judge.runner",
    "run_judge": "evalkit.judge.runner",
    "score_metrics": "evalkit.judge.runner",
    "parse_score": "evalkit.judge.scores",
    "Template": "evalkit.judge.templates",
    "load_template": "evalkit.judge.templates",
    "parse_template": "evalkit.judge.templates",
    "weighted_preference": "evalkit.judge.verdicts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'evalkit.judge' has no attribute {name!r}")
