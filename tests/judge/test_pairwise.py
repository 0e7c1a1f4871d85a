"""Pairwise mode (AlpacaEval's): weighted and discrete verdicts, both orders, unparsed answers."""

from __future__ import annotations

import math
import re

import pytest

from evalkit.items import instruction_item_id
from evalkit.judge import run_judge
from evalkit.judge.runner import TOP_LOGPROBS
from tests.judge.conftest import add_generate_run
from tests.judge.fake_ollama import FakeOllama, Reply, Token

FAST = {"retry_backoff": 0.01, "progress": False}


def shown_outputs(request) -> tuple[str, str]:
    text = request.messages[1]["content"]
    match = re.search(r"## Output 1\n(.*?)\n\n## Output 2\n(.*?)\n\nWhich output is better\?", text, re.S)
    return match.group(1), match.group(2)


def weighted(p1: float, p2: float, other: float = 0.0) -> Reply:
    """A one-token verdict with these probabilities for "1", "2" (and "The")."""
    alternatives = {"1": math.log(p1) if p1 else -1e4, "2": math.log(p2) if p2 else -1e4}
    if other:
        alternatives["The"] = math.log(other)
    top = max(alternatives, key=alternatives.get)
    return Reply(tokens=[Token(top, alternatives[top], dict(sorted(alternatives.items(), key=lambda kv: -kv[1])))])


def length_judge(request):
    """Prefers the longer output, in proportion to length, with 10% mass on another token."""
    a, b = shown_outputs(request)
    return weighted(0.9 * len(a) / (len(a) + len(b)), 0.9 * len(b) / (len(a) + len(b)), 0.1)


def test_weighted_verdicts_in_both_orders(store, fake_ollama, book_responses):
    records = book_responses[:6]
    fake_ollama.script(length_judge)
    gen = add_generate_run(store, records)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], mode="pairwise", **FAST)
    run = store.get_run(run_id)
    assert run.kind == "judge-pairwise" and run.config["order"] == "swap" and run.config["verdict"] == "logprobs"
    samples = dict(store.samples(run_id))
    for r in records:
        payload = samples[instruction_item_id(r["instruction"], r["input"])]
        ref, resp = r["output"], r["model_response"]
        expected = 1 + len(resp) / (len(ref) + len(resp))  # 2 - P(reference better), renormalised
        assert payload["preference"] == pytest.approx(expected)
        assert payload["order_preferences"] == pytest.approx([expected, expected])
        assert payload["orders"] == ["reference-first", "model-first"] and payload["status"] == "ok"
        assert payload["output_1"] == ref and payload["output_2"] == resp
        assert payload["generator_1"] == "reference" and payload["generator_2"] == "gpt2-medium-sft"
        assert payload["raw_completion"][0]["top_logprobs"][0]["token"] in ("1", "2")
    assert fake_ollama.judge_calls == 12
    request = fake_ollama.requests[0]
    assert request.logprobs and request.top_logprobs == TOP_LOGPROBS and request.format is None
    assert request.options == {"seed": 123, "temperature": 0.0, "num_ctx": 4096, "num_predict": 1}
    assert run.metrics["win_rate"].value == pytest.approx(
        100 * sum(len(r["model_response"]) / (len(r["output"]) + len(r["model_response"])) for r in records) / 6
    )


def test_swap_turns_a_position_bias_into_ties(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: weighted(0.8, 0.2))  # always favours whatever is shown first
    gen = add_generate_run(store, book_responses[:8])
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], mode="pairwise", order="swap", **FAST)
    samples = [p for _, p in store.samples(run_id)]
    assert sum(p["status"] == "identical" for p in samples) == 1  # the book's model got one answer exactly right
    for payload in samples:
        assert payload["preference"] == pytest.approx(1.5)
        if payload["status"] == "ok":
            assert payload["order_preferences"] == pytest.approx([1.2, 1.8])
    assert store.get_run(run_id).metrics["win_rate"].value == pytest.approx(50.0)


def test_random_order_is_seeded_per_instruction_and_equal_across_models(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: weighted(0.8, 0.2))
    records = book_responses[:24]
    gen_a = add_generate_run(store, [{**r, "model_response": r["model_response"] + " (a)"} for r in records], model="model-a")
    gen_b = add_generate_run(store, [{**r, "model_response": r["model_response"] + " (b)"} for r in records], model="model-b")
    orders = []
    for gen in (gen_a, gen_b):
        run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], mode="pairwise", order="random", **FAST)
        samples = dict(store.samples(run_id))
        for payload in samples.values():
            (order,) = payload["orders"]
            # the position-biased judge: 1.2 when the reference is first, 3 - 1.2 when the model is
            assert payload["preference"] == pytest.approx(1.2 if order == "reference-first" else 1.8)
        orders.append({i: p["orders"][0] for i, p in samples.items()})
    assert fake_ollama.judge_calls == 2 * len(orders[0])  # one order per item
    assert orders[0] == orders[1]
    assert 0 < list(orders[0].values()).count("model-first") < len(orders[0])  # both orders occur
    other_seed = run_judge(store, responses_run=gen_a, hosts=[fake_ollama.url], mode="pairwise", order="random", seed=5, **FAST)
    assert {i: p["orders"][0] for i, p in store.samples(other_seed)} != orders[0]


def test_discrete_verdicts_through_a_json_schema(store, fake_ollama, book_responses):
    def longer_wins(request):
        a, b = shown_outputs(request)
        return {"better": "1" if len(a) > len(b) else "2" if len(b) > len(a) else "tie"}

    fake_ollama.script(longer_wins)
    records = [dict(r) for r in book_responses[:4]]
    records[3]["model_response"] = "x" * len(records[3]["output"])  # same length: a tie both ways
    gen = add_generate_run(store, records)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], mode="pairwise", discrete=True, **FAST)
    assert store.get_run(run_id).config["verdict"] == "discrete"
    samples = dict(store.samples(run_id))
    for r in records:
        payload = samples[instruction_item_id(r["instruction"], r["input"])]
        ref, resp = len(r["output"]), len(r["model_response"])
        assert payload["preference"] == (2.0 if resp > ref else 1.0 if resp < ref else 1.5)
        assert payload["raw_completion"][0]["kind"] == "discrete"
    request = fake_ollama.requests[0]
    assert not request.logprobs and request.format["properties"]["better"]["enum"] == ["1", "2", "tie"]
    assert "Answer with JSON only" in request.messages[1]["content"]


def test_inconsistent_discrete_verdicts_become_a_tie(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: {"better": "1"})
    gen = add_generate_run(store, book_responses[:3])
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], mode="pairwise", discrete=True, **FAST)
    assert [p["preference"] for _, p in store.samples(run_id)] == [1.5, 1.5, 1.5]


def test_server_without_logprobs_falls_back_to_discrete(store, book_responses, capsys):
    with FakeOllama(supports_logprobs=False) as old:
        old.script(lambda req: {"better": "2"} if req.format else "2")
        gen = add_generate_run(store, book_responses[:3])
        run_id = run_judge(store, responses_run=gen, hosts=[old.url], mode="pairwise", concurrency=1, **FAST)
        assert [p["preference"] for _, p in store.samples(run_id)] == [1.5, 1.5, 1.5]  # "2" in both orders
        assert old.judge_calls == 1 + 6  # one logprob request found none; the rest asked discretely
    assert "returned no logprobs" in capsys.readouterr().err


def test_identical_outputs_and_unparsed_verdicts(store, fake_ollama, book_responses):
    records = [dict(r) for r in book_responses[:3]]
    records[0]["model_response"] = records[0]["output"]
    # no verdict token among the top logprobs: AlpacaEval's NaN, here "unparsed"
    fake_ollama.script(lambda req: Reply(tokens=[Token("The", -0.1, {"Based": -2.5})]))
    gen = add_generate_run(store, records)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], mode="pairwise", **FAST)
    samples = dict(store.samples(run_id))
    same = samples[instruction_item_id(records[0]["instruction"], records[0]["input"])]
    assert same["preference"] == 1.5 and same["status"] == "identical" and same["raw_completion"] == []
    for r in records[1:]:
        payload = samples[instruction_item_id(r["instruction"], r["input"])]
        assert payload["preference"] is None and payload["status"] == "unparsed"
        assert payload["raw_completion"][0]["top_logprobs"] == [{"token": "The", "logprob": -0.1}, {"token": "Based", "logprob": -2.5}]
    assert fake_ollama.judge_calls == 4  # nothing for the identical pair
    metrics = store.get_run(run_id).metrics
    # parsed / verdicts the judge was asked for (the identical pair was not asked), as in score mode
    assert metrics["parse_rate"].value == 0.0 and metrics["parse_rate"].n == 2
    assert metrics["n_total"].value == 1 and metrics["win_rate"].value == 50.0


def test_reference_from_another_generate_run(store, fake_ollama, book_responses):
    fake_ollama.script(length_judge)
    records = book_responses[:4]
    gen = add_generate_run(store, records, model="candidate")
    base = add_generate_run(store, [{**r, "model_response": r["output"] + " Indeed."} for r in records], model="baseline")
    run_id = run_judge(store, responses_run=gen, reference=base, hosts=[fake_ollama.url], mode="pairwise", **FAST)
    run = store.get_run(run_id)
    assert run.config["reference"]["source"] == f"run:{base}"
    for _, payload in store.samples(run_id):
        assert payload["generator_1"] == "baseline" and payload["output_1"].endswith(" Indeed.")
