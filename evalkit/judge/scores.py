"""Reading a 0-100 score from a judge's answer, strictly.

A number is taken as the score only when the answer ties it to the scale:

1. a JSON object with the requested field, ``{"score": 85}`` (the whole answer, also nested,
   or an object inside prose such as a fenced ```json block); a JSON answer without the field
   (``{"rating": 80}``) gives no score;
2. a bare integer: the whole answer is ``85`` (quotes, ``**`` and a final period allowed);
3. a number tied to the scale by its words: ``Score: 85``, ``my score is 40``,
   ``final score of 85``, ``it would score 85``, ``Rating: 72``, ``I rate it 72``,
   ``I'd give it a 72``, ``72/100``, ``72 out of 100``.

Every tied number in the answer is a candidate. The answer is ``unparsed`` (``None``) when
there is no candidate, when the candidates disagree (``Score: 60 ... Score: 80``), when a
candidate is not an integer from 0 to 100 (``Score: 150``, ``Score: 7.5``, ``{"score": -1}``)
or when a number is given on another scale (``7/10``, ``4 out of 5``, ``on a scale of 1 to
10``; ``3/4 points`` counts things and is no scale). Numbers that are not tied (``makes 3
errors``, ``Step 1``) are never read, and the scale's own description (``0-100``, ``from 0 to
100``, ``Score (out of 100):``) is not a candidate.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from evalkit.judge.embedded_json import embedded_json_objects

SCORE_FIELD = "score"
SCORE_SCHEMA = {
    "type": "object",
    "properties": {SCORE_FIELD: {"type": "integer", "minimum": 0, "maximum": 100}},
    "required": [SCORE_FIELD],
}
_NUMBER = r"([-+]?\d+(?:\.\d+)?)(?![\d.]*\d)"  # a whole number token, sign and decimals included
# the scale's own description is no candidate: "0-100", "(0 to 100)", "Score (out of 100):", "[/100]"
_SCALE_RANGE = re.compile(
    r"[(\[]\s*(?:out\s+of\s+100|/\s*100|0\s*(?:-|–|to)\s*100)\s*[)\]]|\(?\b0\s*(?:-|–|to)\s*100\b\)?", re.I
)
# a dash separates only with a space after it: "Score - 70", while "Score: -5" is minus five
# markup around words and numbers: **bold**, "quoted" keys ("score": 85), [[85]] (MT-bench's brackets)
_MARK = r"[\s*\"'`]*"
_OPEN = r"[\s*\"'`\[(]*"
_SEPARATOR = r"(?:" + _MARK + r"(?:would\s+be|will\s+be|is|of|:|=|-(?=\s)|–(?=\s))" + _MARK + r"){1,2}"
_FILLER = r"(?:(?:therefore|thus|then|overall|roughly|about|around|approximately|exactly|just)\s+)?(?:a\s+|an\s+)?" + _OPEN
_TIED = [
    # "Score: 85", "my score is 40", "final score of 85", "Score = 90", "score for this response: 70",
    # "The score is therefore 85", "**Score:** 70"
    re.compile(
        r"\bscore[sd]?\b(?:\s+(?:for|of)\s+(?:this|the|that)\s+(?:response|answer|output))?" + _SEPARATOR + _FILLER + _NUMBER,
        re.I,
    ),
    # "it would score 85", "the response scored 72" (no separator: "score" or "scored" right before it)
    re.compile(r"\bscored?\s+" + _OPEN + _NUMBER, re.I),
    # "Rating: 72", "my rating is 72", "Grade: 80"
    re.compile(r"\b(?:rating|grade)\b" + _SEPARATOR + _FILLER + _NUMBER, re.I),
    # "I rate it 72", "I would rate this response 72", "I'd give it a 90", "I assign this a score of 70",
    # "I would score this response 75"
    re.compile(
        r"\b(?:rate|grade|give|assign|award|score)\s+(?:it|this|that|the|this\s+response|this\s+answer|the\s+response|the\s+answer)"
        r"(?:\s+(?:response|answer|output))?\s+(?:at\s+|as\s+)?" + _FILLER + r"(?:score\s+of\s+|rating\s+of\s+)?" + _OPEN + _NUMBER,
        re.I,
    ),
    # "72/100", "72 out of 100", "72 / 100"
    re.compile(r"(?<![\w.])([-+]?\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*100\b(?!\.\d)", re.I),
]
# a tied number given on another scale: "Score: 7/10", "I rate it 4 out of 5"
_ANOTHER_SCALE_AFTER = re.compile(r"\s*(?:\*\*)?\s*(?:/|out\s+of)\s*(\d+)\b", re.I)
# a tied range is two candidates: "Score: 85-90", "I rate it 70 to 80"
_RANGE_AFTER = re.compile(r"\s*(?:-|–|to)\s*\d", re.I)
# a score on another scale anywhere: "7/10", "8 out of 10", "scale of 1 to 10" ("3/4 points" counts things)
_OTHER_SCALE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s*(?:/|out\s+of)\s*(\d+)\b(?!\s+(?:[a-z]{3,}s\b|criteria))", re.I)
_OTHER_RANGE = re.compile(r"\bscale\s+(?:of|from)\s+\d+\s*(?:-|–|to)\s*(\d+)\b", re.I)
_BARE = re.compile(r"[\s\"'`*\[(]*([-+]?\d+(?:\.\d+)?)[\s\"'`*\])]*\.?[\s\"'`*]*")


def _as_score(value: Any) -> int | None:
    """``value`` as an integer 0-100, else None (bools, fractions and out-of-range numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[-+]?\d+(?:\.\d+)?\s*", value):
            return None
        value = float(value)
    if isinstance(value, (int, float)) and math.isfinite(value) and float(value).is_integer() and 0 <= value <= 100:
        return int(value)
    return None


class _Invalid:
    """A tied candidate that is no valid score (out of range, a fraction, another scale)."""


_INVALID = _Invalid()


def _score_fields(value: Any) -> list[Any]:
    """Every value of the requested field in a JSON value (objects within objects and lists)."""
    if isinstance(value, dict):
        found = [value[SCORE_FIELD]] if SCORE_FIELD in value else []
        return found + [v for child in value.values() if isinstance(child, (dict, list)) for v in _score_fields(child)]
    if isinstance(value, list):
        return [v for child in value for v in _score_fields(child)]
    return []


def _embedded_json_candidates(text: str) -> list[Any]:
    """The requested field of every JSON object inside prose (e.g. a fenced ```json block)."""
    return [value[SCORE_FIELD] for value in embedded_json_objects(text) if isinstance(value, dict) and SCORE_FIELD in value]


def score_candidates(text: str) -> list[int | _Invalid]:
    """Every number the answer ties to the 0-100 scale (see the module's rules)."""
    bare = _BARE.fullmatch(text)
    if bare:
        score = _as_score(bare.group(1))
        return [score if score is not None else _INVALID]
    candidates: list[int | _Invalid] = []
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        whole = None
    else:
        if isinstance(whole, (dict, list)):
            # a JSON answer is read by its requested field only: {"rating": 80} gives no score
            return [s if (s := _as_score(v)) is not None else _INVALID for v in _score_fields(whole)]
    for value in _embedded_json_candidates(text):
        score = _as_score(value)
        candidates.append(score if score is not None else _INVALID)
    prose = _SCALE_RANGE.sub(" ", text)
    for pattern in (_OTHER_SCALE, _OTHER_RANGE):
        for match in pattern.finditer(prose):
            if match.group(1) != "100":
                candidates.append(_INVALID)
    for pattern in _TIED:
        for match in pattern.finditer(prose):
            score = _as_score(match.group(1))
            scale = _ANOTHER_SCALE_AFTER.match(prose, match.end())
            if (scale and scale.group(1) != "100") or _RANGE_AFTER.match(prose, match.end()):
                score = None
            candidates.append(score if score is not None else _INVALID)
    return candidates


def parse_score(text: str) -> int | None:
    """The score the answer gives, or None when it gives none, several, or an invalid one."""
    candidates = score_candidates(text)
    if not candidates or any(c is _INVALID for c in candidates):
        return None
    values = set(candidates)
    return values.pop() if len(values) == 1 else None  # type: ignore[return-value]


def parse_book_score(text: str) -> int | None:
    """Chapter 7's reading, ``int(answer)`` (an answer that ``int`` rejects is skipped there),
    restricted to 0-100 so that no out-of-scale number is ever stored as a score."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


RULES = (
    "Scores are read strictly: a JSON answer with the field \"score\", a bare integer, or a number "
    "tied to the scale by its words (\"Score: 85\", \"my score is 40\", \"I rate it 72\", \"72/100\", "
    "\"72 out of 100\"). Two different candidates, a number outside 0-100 or a score on another scale "
    "(\"7/10\") leave the answer unparsed; untied numbers are never read."
)
