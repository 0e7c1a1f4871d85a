"""`--backend openai`: the same judge through the official openai client, against the loopback
OpenAI-compatible server (tests/judge/fake_openai.py): requests, logprobs, response_format and
its fallback, retries, fail-fast errors, preflight, cache, replicas, resume, and the API key
never written or printed anywhere."""

from __future__ import annotations

import json
import math

import pytest

from evalkit.errors import EvalkitError, InputError
from evalkit.judge import run_judge
from evalkit.judge.providers import make_provider
from evalkit.judge.providers.openai import resolve_hosts
from tests.judge.conftest import add_generate_run
from tests.judge.fake_ollama import FakeOllama
from tests.judge.fake_openai import Fault, FakeOpenAI, Reply, Token

FAST = {"retry_backoff": 0.01, "progress": False, "backend": "openai"}
KEY = "sk-test-9f3Kq2SECRETvalue-7781"


@pytest.fixture
def fake_openai():
    with FakeOpenAI(models={"llama3": {}}) as server:
        yield server


def judge(store, gen, server, **kwargs):
    hosts = kwargs.pop("hosts", None) or [server.url]
    return run_judge(store, responses_run=gen, hosts=hosts, **{**FAST, **kwargs})


def test_score_through_response_format(store, fake_openai, book_responses):
    fake_openai.script(lambda req: {"score": 80})
    gen = add_generate_run(store, book_responses[:5])
    run_id = judge(store, gen, fake_openai)
    run = store.get_run(run_id)
    assert run.metrics["score_mean"].value == 80 and run.metrics["parse_rate"].value == 1.0
    request = fake_openai.requests[0]
    assert request.body["response_format"]["type"] == "json_schema"
    schema = request.format
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 0, "maximum": 100}
    assert schema["additionalProperties"] is False and request.body["response_format"]["json_schema"]["strict"] is True
    # evalkit's options, mapped: num_predict -> max_tokens; num_ctx is the server's and not sent
    assert request.options == {"temperature": 0.0, "seed": 123, "max_tokens": 128}
    assert "logprobs" not in request.body and not request.stream
    assert run.config["backend"] == "openai" and run.config["judge_digest"] == "llama3@/models/llama3"
    assert "num_ctx" not in run.config["options"]


def test_server_without_response_format_falls_back_to_the_strict_parser(store, book_responses, capsys):
    with FakeOpenAI(models={"llama3": {}}, supports_response_format=False) as server:
        server.script(lambda req: "Step 1: compare. The response makes 2 errors. Score: 65")
        gen = add_generate_run(store, book_responses[:4])
        run_id = judge(store, gen, server, concurrency=1)
        assert [p["score"] for _, p in store.samples(run_id)] == [65] * 4
        # refused once, then never asked with response_format again
        assert sum("response_format" in r.body for r in server.requests) == 1
        assert server.judge_calls == 5
    assert capsys.readouterr().err.count("refused response_format") == 1


def test_weighted_pairwise_through_top_logprobs(store, fake_openai, book_responses):
    def judge_says(request):  # P(output 2 better) = 0.8 whatever the order
        return Reply(tokens=[Token("2", math.log(0.8), {"1": math.log(0.2)})])

    fake_openai.script(judge_says)
    gen = add_generate_run(store, book_responses[:3])
    run_id = judge(store, gen, fake_openai, mode="pairwise", order="swap", reference=None)
    samples = [p for _, p in store.samples(run_id)]
    # 0.8 for the model shown second, 0.2 when shown first: averaged to 1.5
    assert all(p["order_preferences"] == [pytest.approx(1.8), pytest.approx(1.2)] for p in samples)
    request = fake_openai.requests[0]
    assert request.body["logprobs"] is True and request.body["top_logprobs"] == 5 and request.options["max_tokens"] == 1


def test_alpaca_eval_annotator_on_an_openai_server(store, fake_openai, book_responses):
    tokens = [Token("M", math.log(0.75), {"m": math.log(0.25), " m": math.log(0.01)})]
    fake_openai.script(lambda req: Reply(tokens=tokens))
    gen = add_generate_run(store, book_responses[:3])
    run_id = judge(store, gen, fake_openai, mode="pairwise", prompt_template="alpaca-eval:weighted_alpaca_eval_gpt4_turbo",
                   order="random")
    request = fake_openai.requests[0]
    assert request.options == {"temperature": 1, "max_tokens": 1, "seed": 123}
    assert request.body["top_logprobs"] == 5 and [m["role"] for m in request.messages] == ["system", "user"]
    for _, payload in store.samples(run_id):
        shown = 2 - 0.25  # AlpacaEval: 2 - P(m) over {m, M}; " m" is not counted
        expected = 3 - shown if payload["orders"] == ["model-first"] else shown
        assert payload["preference"] == pytest.approx(expected, abs=1e-12)


def test_transient_failures_are_retried(store, fake_openai, book_responses):
    fake_openai.script(lambda req: {"score": 50})
    fake_openai.inject(Fault(status=500), Fault(status=503), Fault(status=429), Fault(garbage=True), Fault(drop=True),
                       Fault(delay=3))
    gen = add_generate_run(store, book_responses[:3])
    run_id = judge(store, gen, fake_openai, concurrency=1, timeout=0.5, retries=6)
    assert [p["score"] for _, p in store.samples(run_id)] == [50, 50, 50]
    assert fake_openai.judge_calls == 3 + 6


def test_client_errors_fail_fast(store, fake_openai, book_responses):
    # two: the item a worker may start before the stop fails too, so no item is stored
    fake_openai.inject(Fault(status=400, error="messages: too long"), Fault(status=400, error="messages: too long"))
    gen = add_generate_run(store, book_responses[:3])
    with pytest.raises(EvalkitError, match=r"refused the judge request \(400\): messages: too long"):
        judge(store, gen, fake_openai, concurrency=1)
    assert fake_openai.judge_calls <= 2 and store.list_runs(kind="judge-score") == []


def test_retries_exhausted_then_resume(store, fake_openai, book_responses):
    fake_openai.script(lambda req: {"score": 40})
    judge(store, add_generate_run(store, book_responses[:1], model="other"), fake_openai)
    gen = add_generate_run(store, book_responses[:4])
    fake_openai.inject(*[Fault(status=500, error="out of memory")] * 6)
    with pytest.raises(EvalkitError, match="failed after 3 attempts.*1 of 4 items are stored; re-run to resume"):
        judge(store, gen, fake_openai, concurrency=1, retries=2)
    (run,) = store.list_runs(kind="judge-score", model="gpt2-medium-sft")
    assert run.status == "failed" and store.sample_count(run.id) == 1
    run_id = judge(store, gen, fake_openai, concurrency=1)
    assert run_id == run.id and store.sample_count(run_id) == 4 and store.get_run(run_id).status == "done"


def test_cache_is_shared_per_backend_and_model_identity(store, book_responses):
    gen = add_generate_run(store, book_responses[:6])
    with FakeOpenAI(models={"llama3": {}}) as a, FakeOpenAI(models={"llama3": {}}) as b:
        a.script(lambda req: {"score": 30})
        b.script(lambda req: {"score": 30})
        judge(store, gen, a, refresh=True)
        assert a.judge_calls == 6
        # another replica of the same model (same id and root): answers come from the cache
        judge(store, gen, b, refresh=False, prompt_template=None, seed=None, concurrency=2)
        assert b.judge_calls == 0
    # the same model name behind Ollama is another backend: nothing is taken from the OpenAI answers
    with FakeOllama(models={"llama3": {}}) as ollama:
        ollama.script(lambda req: {"score": 30})
        run_judge(store, responses_run=gen, hosts=[ollama.url], progress=False)
        assert ollama.judge_calls == 6


def test_replicas_share_the_work_and_must_serve_the_same_model(store, book_responses):
    gen = add_generate_run(store, book_responses[:12])
    with FakeOpenAI(models={"llama3": {}}, latency=0.05) as a, FakeOpenAI(models={"llama3": {}}, latency=0.05) as b:
        judge(store, gen, a, hosts=[a.url, b.url], concurrency=4)
        assert a.judge_calls + b.judge_calls == 12 and a.judge_calls >= 3 and b.judge_calls >= 3
    with FakeOpenAI(models={"llama3": {"root": "/a"}}) as a, FakeOpenAI(models={"llama3": {"root": "/b"}}) as b:
        with pytest.raises(EvalkitError, match="different builds of llama3"):
            judge(store, gen, a, hosts=[a.url, b.url], refresh=True)


def test_preflight_errors(store, fake_openai, book_responses):
    gen = add_generate_run(store, book_responses[:2])
    with pytest.raises(EvalkitError, match=r"cannot reach an OpenAI-compatible server at http://127.0.0.1:9/v1 .*vllm serve"):
        judge(store, gen, fake_openai, hosts=["http://127.0.0.1:9/v1"])
    with pytest.raises(EvalkitError, match=r"judge model 'gpt-4o' is not served at .* \(it serves: llama3\)"):
        judge(store, gen, fake_openai, judge_model="gpt-4o")
    with pytest.raises(InputError, match="base URL ending in /v1"):
        judge(store, gen, fake_openai, hosts=[fake_openai.root])
    assert fake_openai.judge_calls == 0 and store.list_runs(kind="judge-score") == []


def test_host_resolution(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert resolve_hosts(None) == ["http://localhost:8000/v1"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gpu-1:8000/v1/")
    assert resolve_hosts(None) == ["http://gpu-1:8000/v1"]
    assert resolve_hosts(["a:8000/v1", "http://a:8000/v1"]) == ["http://a:8000/v1"]


def test_api_key_env(monkeypatch, fake_openai):
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    with pytest.raises(InputError, match="--api-key-env MY_JUDGE_KEY: that environment variable is not set"):
        make_provider("openai", "llama3", [fake_openai.url], api_key_env="MY_JUDGE_KEY")
    with pytest.raises(InputError, match="goes with --backend openai"):
        make_provider("ollama", "llama3", None, api_key_env="MY_JUDGE_KEY")


def test_wrong_key_is_refused_and_the_key_appears_nowhere(run_cli, tmp_path, monkeypatch):
    from tests.conftest import shared_path

    book = shared_path("book-ch07", "instruction-data-with-response.json")
    small = tmp_path / "five.json"
    small.write_text(json.dumps(json.loads(book.read_text())[:5]))
    with FakeOpenAI(models={"llama3": {}}, api_key=KEY) as server:
        server.script(lambda req: {"score": 90})
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key")
        rc, out, err = run_cli("judge", "--responses", small, "--backend", "openai", "--host", server.url, "--no-progress")
        assert rc == 2 and "refused the API key (401)" in err and "sk-wrong-key" not in out + err
        monkeypatch.delenv("OPENAI_API_KEY")
        monkeypatch.setenv("JUDGE_KEY", KEY)
        rc, out, err = run_cli("judge", "--responses", small, "--backend", "openai", "--api-key-env", "JUDGE_KEY",
                               "--host", server.url, "--format", "json")
        assert rc == 0, err
        assert json.loads(out)["metrics"]["score_mean"]["value"] == 90
        seen = out + err
        rc, out, err = run_cli("report", "--out", tmp_path / "report.html")
        assert rc == 0, err
        seen += out + err
        rc, out, err = run_cli("runs", "list", "--format", "json")
        seen += out + err
    assert KEY not in seen
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert KEY.encode() not in stored and b"SECRET" not in stored


def test_ollamas_own_v1_lists_full_tags(store, book_responses):
    # Ollama's /v1/models lists "llama3:latest"; --judge-model llama3 means that tag, as on its native API
    with FakeOpenAI(models={"llama3:latest": {"root": "llama3:latest"}}) as server:
        server.script(lambda req: {"score": 55})
        gen = add_generate_run(store, book_responses[:2])
        run_id = judge(store, gen, server)
        assert {r.body["model"] for r in server.requests} == {"llama3:latest"}
        assert store.get_run(run_id).config["judge_digest"] == "llama3:latest"
