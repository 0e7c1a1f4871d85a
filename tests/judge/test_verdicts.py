"""Parsing judge answers: exact values on hand-computed cases, and None (never a number) otherwise."""

from __future__ import annotations

import math

import pytest

from evalkit.judge.verdicts import lenient_discrete, parse_discrete, weighted_preference

V = ("1", "2")


def lp(token, p, tops=()):
    return [{"token": token, "logprob": math.log(p), "top_logprobs": [{"token": t, "logprob": math.log(q)} for t, q in tops]}]


def test_discrete_verdicts():
    assert parse_discrete('{"better": "1"}', V) == 1.0
    assert parse_discrete('{"better": "2"}', V) == 2.0
    assert parse_discrete('{"better": "tie"}', V) == 1.5
    assert parse_discrete('{"better": "3"}', V) is None
    assert parse_discrete("2", V) is None
    assert parse_discrete("2", V, structured=False) == 2.0
    assert parse_discrete('{"better": "M"}', ("m", "M")) == 2.0
    assert lenient_discrete('I think {"better": "2"}', V) == 2.0
    assert lenient_discrete("Output 2 is better.", ("A", "B")) is None  # "2" is not a verdict word here
    assert lenient_discrete("**B**", ("A", "B")) == 2.0
    assert lenient_discrete("I'd call it a tie", V) == 1.5
    assert lenient_discrete("either 1 or 2", V) is None  # ambiguous stays unparsed


def test_weighted_preference_renormalises_the_two_candidates():
    # P(1)=0.6, P(2)=0.2 among the top tokens: renormalised P(1)=0.75 -> preference 2-0.75
    pref, probs = weighted_preference(lp("1", 0.6, [("1", 0.6), ("2", 0.2), ("The", 0.1)]), V)
    assert pref == pytest.approx(1.25) and probs == pytest.approx({"1": 0.75, "2": 0.25})


def test_weighted_preference_missing_candidate_counts_as_zero():
    pref, probs = weighted_preference(lp("2", 0.9, [("2", 0.9), ("The", 0.05)]), V)
    assert pref == 2.0 and probs == {"1": 0.0, "2": 1.0}
    pref, _ = weighted_preference(lp("1", 0.9, [("1", 0.9)]), V)
    assert pref == 1.0


def test_weighted_preference_both_missing_is_unparsed():
    assert weighted_preference(lp("The", 0.9, [("The", 0.9), ("Based", 0.05)]), V) == (None, {})
    assert weighted_preference(None, V) == (None, {})
    assert weighted_preference([], V) == (None, {})


def test_weighted_preference_adds_whitespace_variants_and_the_sampled_token():
    # " 2" and "2" are both verdict 2: 0.3 + 0.1 against 0.4 -> 0.5/0.5 -> preference 1.5
    pref, _ = weighted_preference(lp("1", 0.4, [("1", 0.4), (" 2", 0.3), ("2", 0.1)]), V)
    assert pref == pytest.approx(1.5)
    # the sampled token counts even when the server left it out of top_logprobs
    pref, _ = weighted_preference(lp("2", 0.5, [("1", 0.5)]), V)
    assert pref == pytest.approx(1.5)


def test_weighted_preference_alpaca_eval_tokens_match_its_parser():
    # AlpacaEval's raw_completion for one item: M (-7.3458e-06), m (-11.906258) -> 2 - P(m)/(P(m)+P(M))
    tops = [{"token": "M", "logprob": -7.3458e-06}, {"token": "m", "logprob": -11.906258}, {"token": "The", "logprob": -15.5}]
    pref, _ = weighted_preference([{"token": "M", "logprob": -7.3458e-06, "top_logprobs": tops}], ("m", "M"))
    p_m = math.exp(-11.906258) / (math.exp(-11.906258) + math.exp(-7.3458e-06))
    assert pref == pytest.approx(2 - p_m, abs=1e-12)
