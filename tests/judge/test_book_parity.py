"""`--prompt-template book` is chapter 7's judge: the llms-from-scratch package's own
``generate_model_scores`` and evalkit send the same requests to the same loopback server and
end with the same scores."""

from __future__ import annotations

import functools
import hashlib
import json

import pytest

from tests.judge.fake_ollama import FakeOllama

ch07 = pytest.importorskip("llms_from_scratch.ch07", reason="the book's reference package: pip install --no-deps llms-from-scratch")

# What a judge may answer; the book reads int(answer) and skips the rest
ANSWERS = ["85", "72", " 90\n", "0", "100", "Score: 85", "85.", "+40", "7/10", "The response is fine, 60", "55"]


def _answer(request) -> str:
    digest = hashlib.sha256(request.messages[0]["content"].encode()).digest()
    return ANSWERS[digest[0] % len(ANSWERS)]


@pytest.fixture
def server():
    with FakeOllama(models={"llama3": {}}) as fake:
        fake.script(_answer)
        yield fake


def test_book_template_sends_the_books_requests_and_reads_the_books_scores(run_cli, server, book_responses, tmp_path,
                                                                          monkeypatch, capsys):
    records = book_responses[:40]
    # the package's query_model is the book's, with only the server address changed
    monkeypatch.setattr(ch07, "query_model", functools.partial(ch07.query_model, url=f"{server.url}/api/chat"))
    book_scores = ch07.generate_model_scores(records, "model_response", model="llama3")
    book_requests = [r.body for r in server.requests if r.path == "/api/chat"]
    assert len(book_requests) == len(records)
    server.reset_counts()
    assert "Could not convert score" in capsys.readouterr().out  # the book's own message for what it skips

    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps(records))
    rc, out, err = run_cli("judge", "--responses", responses, "--prompt-template", "book", "--host", server.url,
                           "--concurrency", "1", "--no-progress", "--format", "json")
    assert rc == 0, err
    ours = [r.body for r in server.requests if r.path == "/api/chat"]
    assert len(ours) == len(records)
    for book, evalkit in zip(book_requests, ours):
        assert evalkit["messages"] == book["messages"]
        assert evalkit["options"] == book["options"] == {"seed": 123, "temperature": 0, "num_ctx": 2048}
        assert evalkit["model"] == book["model"] == "llama3"
        # streamed (the book sends no "stream": Ollama's default is to stream), no format
        assert "stream" not in book and evalkit.get("stream", True) is True
        assert "format" not in book and "format" not in evalkit
        # the official ollama client always sends a tools list; empty, it changes nothing
        assert set(evalkit) - set(book) <= {"stream", "tools"} and not evalkit.get("tools")

    run = json.loads(out)
    assert run["config"]["template"]["name"] == "book-ch07"
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path / "evalkit.db") as store:
        samples = dict(store.samples(run["id"]))
    from evalkit.items import instruction_item_id

    ordered = [samples[instruction_item_id(r["instruction"], r.get("input") or "")] for r in records]
    # every score the book keeps, in its order; what the book skips is unparsed here
    assert [s["score"] for s in ordered if s["score"] is not None] == book_scores
    assert [s["status"] for s in ordered].count("unparsed") == len(records) - len(book_scores)
    assert len(book_scores) < len(records)  # the answers above include unreadable ones
    assert run["metrics"]["score_mean"]["value"] == pytest.approx(sum(book_scores) / len(book_scores))


def test_book_template_never_stores_an_out_of_scale_number(run_cli, server, book_responses, tmp_path):
    # the one place evalkit reads less than int(answer): 150 and -3 are no 0-100 scores
    server.script(lambda req: "150" if "Name" in req.messages[0]["content"] else "-3")
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps(book_responses[:3]))
    rc, out, err = run_cli("judge", "--responses", responses, "--prompt-template", "book", "--host", server.url,
                           "--no-progress", "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["metrics"]["parse_rate"]["value"] == 0.0
