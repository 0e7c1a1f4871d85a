"""Score mode (the book's evaluation) end to end against the loopback Ollama server."""

from __future__ import annotations

import math
import re
import statistics

import pytest

from evalkit.items import instruction_item_id
from evalkit.judge import run_judge
from evalkit.judge.scores import SCORE_SCHEMA
from tests.judge.conftest import add_generate_run
from tests.judge.fake_ollama import Reply


def response_of(request) -> str:
    """The response the judge is asked to rate, cut out of the built-in template's prompt."""
    first_turn = request.messages[1]["content"]
    return re.search(r"## Response to rate\n(.*?)\n\nScore from", first_turn, re.S).group(1)


def test_scores_metrics_empty_and_unparsed(store, fake_ollama, book_responses):
    records = [dict(r) for r in book_responses[:5]]
    records[4]["model_response"] = "   "
    answers = {
        records[0]["model_response"]: {"score": 80},
        records[1]["model_response"]: {"score": 60},
        records[2]["model_response"]: {"score": 90},
        records[3]["model_response"]: "I cannot rate this.",
    }
    fake_ollama.script(lambda req: answers[response_of(req)])
    gen = add_generate_run(store, records)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], progress=False)

    run = store.get_run(run_id)
    assert run.kind == "judge-score" and run.model == "gpt2-medium-sft" and run.status == "done"
    scores = [80, 60, 90, 0]  # the unparsed item is left out, the empty one scores 0
    assert run.metrics["score_mean"].value == pytest.approx(57.5)
    assert run.metrics["score_mean"].stderr == pytest.approx(statistics.stdev(scores) / 2)
    assert run.metrics["score_mean"].n == 4
    assert run.metrics["parse_rate"].value == pytest.approx(0.75) and run.metrics["parse_rate"].n == 4
    dist = {k.split("/")[1]: m.value for k, m in run.metrics.items() if k.startswith("score_dist/")}
    assert dist == {"00-09": 1, "10-19": 0, "20-29": 0, "30-39": 0, "40-49": 0, "50-59": 0, "60-69": 1,
                    "70-79": 0, "80-89": 1, "90-100": 1}
    assert run.metrics["score_median"].value == 70

    samples = dict(store.samples(run_id))
    assert len(samples) == 5
    by_response = {p["response"]: p for p in samples.values()}
    assert by_response["   "]["status"] == "empty" and by_response["   "]["score"] == 0 and by_response["   "]["raw"] == []
    unparsed = by_response[records[3]["model_response"]]
    assert unparsed["status"] == "unparsed" and unparsed["score"] is None
    assert [r["content"] for r in unparsed["raw"]] == ["I cannot rate this."] * 3  # asked, then 2 retries
    ok = by_response[records[0]["model_response"]]
    assert ok["status"] == "ok" and ok["score"] == 80
    assert set(ok) >= {"instruction", "input", "reference", "response", "score", "status", "raw"}
    assert ok["reference"] == records[0]["output"] and ok["instruction"] == records[0]["instruction"]
    # 3 parsed answers + 3 attempts for the unreadable one; none for the empty response
    assert fake_ollama.judge_calls == 6


def test_requests_carry_the_books_options_schema_and_a_corrective_retry(store, fake_ollama, book_responses):
    records = book_responses[:1]
    fake_ollama.script(lambda req: {"score": 77} if len(req.messages) > 2 else "seventy-seven")
    gen = add_generate_run(store, records)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], progress=False)
    first, retry = fake_ollama.requests
    assert first.options == {"seed": 123, "temperature": 0.0, "num_ctx": 2048, "num_predict": 128}
    assert first.format == SCORE_SCHEMA and not first.stream and first.model == "llama3"
    assert retry.messages[:2] == first.messages
    assert retry.messages[2] == {"role": "assistant", "content": "seventy-seven"}
    assert retry.messages[3]["role"] == "user" and "could not be read" in retry.messages[3]["content"]
    (payload,) = (p for _, p in store.samples(run_id))
    assert payload["score"] == 77 and payload["status"] == "ok" and len(payload["raw"]) == 2

    config = store.get_run(run_id).config
    digest = fake_ollama.models["llama3:latest"]["digest"]
    assert config["judge_model"] == "llama3" and config["judge_digest"] == digest
    assert config["eval_set"] == "book-test" and config["responses_run"] == gen
    assert config["template"]["name"] == "evalkit-score-v1" and len(config["template_hash"]) == 16
    assert config["options"] == {"seed": 123, "temperature": 0.0, "num_ctx": 2048}


def test_a_tied_number_in_prose_is_read_without_a_retry(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: "Score: 85/100")
    gen = add_generate_run(store, book_responses[:1])
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], progress=False, parse_retries=1)
    (payload,) = (p for _, p in store.samples(run_id))
    assert payload["score"] == 85 and payload["status"] == "ok" and len(payload["raw"]) == 1
    assert fake_ollama.judge_calls == 1


def test_incidental_numbers_are_never_a_score(store, fake_ollama, book_responses):
    answers = iter(["The response makes 3 factual errors and misses 2 points.", "Step 1: compare. Then 7/10."])
    fake_ollama.script(lambda req: next(answers))
    gen = add_generate_run(store, book_responses[:1])
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], progress=False, parse_retries=1)
    (payload,) = (p for _, p in store.samples(run_id))
    assert payload["score"] is None and payload["status"] == "unparsed" and len(payload["raw"]) == 2
    assert store.get_run(run_id).metrics["parse_rate"].value == 0.0


def test_book_test_split_with_110_real_responses(store, fake_ollama, book_responses):
    # a judge that scores by word overlap with the reference: deterministic, data-dependent
    def overlap(request):
        text = request.messages[1]["content"]
        reference = re.search(r"## Reference answer\n(.*?)\n\n## Response", text, re.S).group(1)
        a, b = set(reference.lower().split()), set(response_of(request).lower().split())
        return {"score": round(100 * len(a & b) / len(a | b)) if a | b else 0}

    fake_ollama.script(overlap)
    gen = add_generate_run(store, book_responses)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], concurrency=4, progress=False)
    samples = [p for _, p in store.samples(run_id)]
    # one instruction appears twice in the book's split: item ids are by text, so 109 items
    unique = {instruction_item_id(r["instruction"], r["input"]): r for r in book_responses}
    assert len(samples) == len(unique) == 109 and all(p["status"] in ("ok", "empty") for p in samples)
    expected = []
    for r in unique.values():
        a, b = set(r["output"].lower().split()), set(r["model_response"].lower().split())
        expected.append(0 if not r["model_response"].strip() else round(100 * len(a & b) / len(a | b)))
    metric = store.get_run(run_id).metrics["score_mean"]
    assert metric.n == 109 and metric.value == pytest.approx(statistics.fmean(expected))
    assert metric.stderr == pytest.approx(statistics.stdev(expected) / math.sqrt(109))


def test_num_ctx_truncation_warnings(store, fake_ollama, book_responses, capsys):
    records = [dict(r) for r in book_responses[:2]]
    records[0]["model_response"] = "word " * 3000  # ~15,000 bytes: cannot fit 2048 tokens
    # the server says it evaluated a full context for every prompt, as Ollama does when it truncates
    fake_ollama.script(lambda req: Reply(json={"score": 20}, prompt_eval_count=2040))
    gen = add_generate_run(store, records)
    run_id = run_judge(store, responses_run=gen, hosts=[fake_ollama.url], progress=False)
    err = capsys.readouterr().err
    assert "1 of 2 judge prompts may not fit num_ctx=2048" in err
    assert "2 judge prompt(s) filled num_ctx=2048 and were probably truncated" in err
    assert all(p["raw"][0]["truncated"] for _, p in store.samples(run_id))
