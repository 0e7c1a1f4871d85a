"""Strict score parsing: a table of judge answers, and a property over answers without a tied number."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.judge.scores import parse_book_score, parse_score

PARSED = [
    # JSON answers with the requested field
    ('{"score": 85}', 85),
    ('{"score": 0}', 0),
    ('{"score": 100}', 100),
    ('  {"score": 72}\n', 72),
    ('{"score": "64"}', 64),
    ('{"score": 85.0}', 85),
    ('```json\n{"score": 91}\n```', 91),
    ('Here is my verdict: {"score": 55}', 55),
    ('{"reasoning": "3 errors, 2 omissions", "score": 40}', 40),
    # bare integers
    ("85", 85),
    (" 72\n", 72),
    ("0", 0),
    ("100", 100),
    ("**90**", 90),
    ('"77"', 77),
    ("65.", 65),
    # numbers tied to the scale by words
    ("Score: 85", 85),
    ("score:85", 85),
    ("Score = 90", 90),
    ("Final score: **85**", 85),
    ("**Score:** 70", 70),
    ("My score is 40.", 40),
    ("The response makes 3 factual errors and misses 2 points, so my score is 40.", 40),
    ("Step 1: compare with the reference. Score: 85", 85),
    ("I would give a score of 78 to this response.", 78),
    ("The score for this response is 66.", 66),
    ("Score (0-100): 73", 73),
    ("On a scale from 0 to 100, my score is 88.", 88),
    ("I rate it 72.", 72),
    ("I'd rate this response 81 because it covers 4 of the 5 points.", 81),
    ("I would rate it at 55", 55),
    ("I give it a 90.", 90),
    ("I'd give this answer 35 since 2 facts are wrong.", 35),
    ("Rating: 72", 72),
    ("My rating is 58.", 58),
    ("72/100", 72),
    ("72 / 100", 72),
    ("72 out of 100", 72),
    ("The response deserves 60/100.", 60),
    ("Score: 85/100", 85),
    ("Score: 85. That is, 85 out of 100.", 85),
    ("The response is correct and complete. Score: 100", 100),
    ("It lists 7 items instead of 10. Score: 65", 65),
    ("Score: 0 - the answer is empty.", 0),
    ("score: 50%", 50),
    ("I would score this response 75.", 75),
    ("The response would score 85.", 85),
    ("Score is: 85", 85),
    ("The final score is therefore 85.", 85),
    ("Score (out of 100): 85", 85),
    ("Score [0-100]: 62", 62),
    ("**Score**: 85", 85),
    ("Score:\n85", 85),
    ("I'll give it an 85.", 85),
    ("I would give this response a score of 85.", 85),
    ("Score: 85/100\nReasoning: the response covers 3/4 points and 2 out of 5 steps.", 85),
    ("(85/100)", 85),
    ("I'd rate it about 85.", 85),
    ("```\n85\n```", 85),
    ("SCORE: 85 points", 85),
    ('"score": 85', 85),
    ("{'score': 85}", 85),
    ("Rating: [[85]]", 85),
    ("[[85]]", 85),
    ('{"evaluation": {"score": 77, "reason": "2 errors"}}', 77),
    ('[{"score": 64}]', 64),
    ("My score: 85 out of a possible 100.", 85),
    ("Score: 85.\nConfidence: 90%", 85),
]

UNPARSED = [
    # no tied number at all
    ("", None),
    ("The response is good.", None),
    ("The response makes 3 factual errors and misses 2 points.", None),
    ("Step 1: compare with the reference.", None),
    ("It is correct in 2 of 3 cases.", None),
    ("In 1999 the answer was 42.", None),
    ("I cannot score this response.", None),
    ('{"rating": 80}', None),
    ('{"score": null}', None),
    ("score", None),
    # two different candidates
    ("Score: 60. On reflection, score: 80.", None),
    ('{"score": 70} Score: 75', None),
    ("I rate it 72, or 80/100 being generous.", None),
    # outside 0-100
    ("Score: 150", None),
    ("150", None),
    ("-5", None),
    ("Score: -5", None),
    ('{"score": 101}', None),
    ('{"score": -1}', None),
    ("250 out of 100", None),
    # not an integer
    ("Score: 7.5", None),
    ("72.5", None),
    ('{"score": 8.5}', None),
    ('{"score": true}', None),
    ('{"score": "high"}', None),
    # another scale
    ("7/10", None),
    ("Score: 7/10", None),
    ("I rate it 4 out of 5.", None),
    ("8 / 10", None),
    ("Score: 8/10, i.e. 80/100", None),
    ("On a scale of 1 to 10, I give it 8.", None),
    ("I rate this a 9/10.", None),
    ("Rating: 4/5 stars", None),
    ("I'd give 7/10 and 70/100", None),
    ("85\n\nThe response is correct.", None),  # a leading number is no bare answer and is not tied
    ("The score of the match was 3-1 in the reference.", None),
    ("Score: 85-90", None),
    ("I rate it 70 to 80.", None),
    ("Score: N/A", None),
    ("Score: 8 out of 10 (80/100)", None),
    ("Grade: A", None),
]


@pytest.mark.parametrize(("text", "expected"), PARSED + UNPARSED)
def test_phrasing_table(text, expected):
    assert parse_score(text) == expected


def test_the_table_is_large():
    assert len(PARSED) + len(UNPARSED) >= 60


@pytest.mark.parametrize(
    ("text", "expected"),
    [("85", 85), (" 85\n", 85), ("+85", 85), ("0", 0), ("100", 100), ("101", None), ("-1", None),
     ("Score: 85", None), ("85.", None), ('{"score": 85}', None), ("", None)],
)
def test_book_reading_is_int_within_the_scale(text, expected):
    assert parse_book_score(text) == expected


# Words that never tie a number to the scale (no "score", "rate", "rating", "grade",
# "give", "assign", "award", no "/", no "out of").
WORDS = ["the", "response", "makes", "factual", "errors", "and", "misses", "points", "step", "compare",
         "with", "reference", "it", "is", "correct", "in", "of", "cases", "answer", "good", "bad", "so",
         "a", "my", "because", "lists", "items", ":", ",", ".", "-", "(", ")", "year", "version", "=", "**"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(WORDS), st.integers(min_value=-200, max_value=300).map(str)),
        min_size=2, max_size=25,
    ).filter(lambda parts: any(p.isalpha() for p in parts))
)
def test_no_answer_without_a_tied_number_parses(parts):
    assert parse_score(" ".join(parts)) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=100), st.lists(st.sampled_from(WORDS), max_size=10), st.integers(0, 99))
def test_one_tied_number_among_untied_ones_is_read(score, words, incidental):
    text = f"It makes {incidental} errors {' '.join(words)}. Score: {score}"
    assert parse_score(text) == score


TIE_WORDS = ("score", "rate", "rating", "grade", "give", "assign", "award", "/", "out of", "{")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,:;-=*()[]'\"!?\n", min_size=1, max_size=80))
def test_arbitrary_text_without_tie_words_never_parses(text):
    lowered = text.lower()
    if any(word in lowered for word in TIE_WORDS) or re.fullmatch(r"[\s\"'`*\[(]*[-+]?[\d.]+[\s\"'`*\])]*\.?[\s\"'`*]*", text):
        return  # tied by its words, or a bare number: parsing it is right
    assert parse_score(text) is None
