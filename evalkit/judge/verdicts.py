"""Reading pairwise judge answers: discrete verdicts and logprob-weighted verdicts (scores: :mod:`evalkit.judge.scores`).

Every parser returns ``None`` when it cannot read an answer; the caller records the item as
``unparsed`` with the raw text. An unparsed answer never becomes a number.

Weighted verdicts follow AlpacaEval 2's ``logprob_parser`` (``is_binarize: false``): from the
first generated token's ``top_logprobs`` take the probabilities of the two verdict tokens,
renormalise them over the pair (a candidate that is absent counts as probability 0; both
absent is unparsed) and return the expected preference ``2 - P(output 1 better)`` in
[1, 2]. One difference, for Ollama's tokenisers: a token matches a verdict after stripping
whitespace, and variants of one verdict (``"1"`` and ``" 1"``) add up.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from evalkit.judge.embedded_json import embedded_json_objects

TIE = "tie"


def verdict_schema(verdict: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"better": {"type": "string", "enum": [verdict[0], verdict[1], TIE]}},
        "required": ["better"],
    }


def _json_objects(text: str) -> list[Any]:
    """The whole text as JSON, else every ``{...}`` inside it that parses (lenient)."""
    try:
        return [json.loads(text)]
    except (json.JSONDecodeError, ValueError):
        pass
    return embedded_json_objects(text)


def _verdict_value(label: Any, verdict: tuple[str, str]) -> float | None:
    label = str(label).strip() if label is not None else ""
    if label == verdict[0]:
        return 1.0
    if label == verdict[1]:
        return 2.0
    if label.lower() == TIE:
        return 1.5
    return None


def parse_discrete(text: str, verdict: tuple[str, str], structured: bool = True) -> float | None:
    """Strict: ``{"better": V}`` (or, without a schema, just ``V``): 1, 2, or 1.5 for a tie."""
    text = text.strip()
    if not structured:
        return _verdict_value(text, verdict)
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return _verdict_value(value.get("better"), verdict) if isinstance(value, dict) else None


def lenient_discrete(text: str, verdict: tuple[str, str]) -> float | None:
    """A ``better`` field in any JSON object, else the one verdict word that stands alone in
    the text (``Output (2) is better`` -> 2); ambiguous text stays unparsed."""
    for value in _json_objects(text):
        if isinstance(value, dict) and (pref := _verdict_value(value.get("better"), verdict)) is not None:
            return pref
    bare = _verdict_value(text.strip().strip(".\"'`*"), verdict)
    if bare is not None:
        return bare
    seen = set()
    for label in (*verdict, TIE):
        if re.search(rf"(?<![\w]){re.escape(label)}(?![\w])", text, flags=re.I if label == TIE else 0):
            seen.add(label)
    return _verdict_value(seen.pop(), verdict) if len(seen) == 1 else None


def weighted_preference(logprobs: list[dict[str, Any]] | None, verdict: tuple[str, str]) -> tuple[float | None, dict[str, float]]:
    """``(preference, {verdict token: renormalised probability})`` from the first token's
    top logprobs; preference is None when neither verdict token is among them."""
    if not logprobs:
        return None, {}
    first = logprobs[0]
    entries = list(first.get("top_logprobs") or [])
    if not any(e.get("token") == first.get("token") for e in entries):
        entries.append({"token": first.get("token"), "logprob": first.get("logprob")})
    mass = dict.fromkeys(verdict, 0.0)
    seen_tokens = set()
    for entry in entries:
        token, lp = entry.get("token"), entry.get("logprob")
        if token is None or lp is None or token in seen_tokens:
            continue
        seen_tokens.add(token)
        key = token.strip()
        if key in mass:
            mass[key] += math.exp(lp)
    total = sum(mass.values())
    if total <= 0:
        return None, {}
    probs = {k: v / total for k, v in mass.items()}
    return 2.0 - probs[verdict[0]], probs


def alpaca_eval_logprob_preference(
    top_logprobs: list[dict[str, Any]] | None,
    numerator_token: str,
    denominator_tokens: list[str],
    is_binarize: bool = False,
) -> float | None:
    """AlpacaEval's ``logprob_parser`` on one token's ``top_logprobs``, to the bit: tokens match
    exactly (``" m"`` is not ``"m"``), a repeated token keeps its last logprob, a missing
    candidate has probability 0, none present is None (AlpacaEval's NaN). Mirrored rather
    than imported: importing alpaca_eval takes seconds and it is only needed for its templates.
    """
    from scipy.special import logsumexp

    wanted = [*denominator_tokens, numerator_token]
    found = {t.get("token"): t.get("logprob") for t in (top_logprobs or []) if t.get("token") in wanted}
    if not found:
        return None
    missing = float("-inf")
    baseline = found.get(numerator_token, missing)
    if is_binarize:
        others = [found.get(t, missing) for t in denominator_tokens if t != numerator_token]
        return 1.0 if all(baseline > t for t in others) else 2.0
    denominator = logsumexp([found.get(t, missing) for t in denominator_tokens])
    value = float(2 - np.exp(baseline - denominator))
    return value if math.isfinite(value) else None
