"""A plan's judge step against loopback servers speaking Ollama's and OpenAI's APIs: the
preflight decides whether judge steps run, and a step judges its variant's responses with the
plan's backend."""

from __future__ import annotations

import json

import pytest

from evalkit.experiment import load_plan, plan_steps
from evalkit.experiment.runner import _Ledger, judge_unreachable
from evalkit.store import ResultsStore
from tests.judge.conftest import add_generate_run, book_responses  # noqa: F401  (a fixture)
from tests.judge.fake_ollama import FakeOllama, Reply
from tests.judge.fake_openai import FakeOpenAI


def _plan(tmp_path, judge: dict):
    path = tmp_path / "plan.yaml"
    path.write_text(
        "name: p\nbase: {model: gpt2-tiny, init: random}\ndata: d.json\n"
        f"evaluations: {{judge: {json.dumps(judge)}}}\nbaseline: a\nvariants: {{a: {{}}}}\n",
        encoding="utf-8",
    )
    return load_plan(path), path


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_the_judge_step_judges_the_variants_responses_with_the_plans_backend(tmp_path, backend, book_responses, monkeypatch):
    server_class = FakeOllama if backend == "ollama" else FakeOpenAI
    with server_class(models={"judge-m": {}}, **({"api_key": "sk-test"} if backend == "openai" else {})) as server:
        server.script(lambda req: Reply(json={"score": 70}))
        judge = {"backend": backend, "model": "judge-m", "host": [server.url], "concurrency": 2}
        if backend == "openai":
            monkeypatch.setenv("PLAN_JUDGE_KEY", "sk-test")
            judge["api_key_env"] = "PLAN_JUDGE_KEY"
        plan, plan_file = _plan(tmp_path, judge)
        assert judge_unreachable(plan.evaluations.judge) is None
        with ResultsStore(tmp_path / "evalkit.db") as store:
            responses = add_generate_run(store, book_responses[:6], model="p-a")
            ledger = _Ledger(tmp_path / "out" / "experiment.json")
            steps = plan_steps(plan, plan_file, store, tmp_path / "out", ledger=ledger)
            (step,) = [s for s in steps if s.kind == "judge"]
            generate_step = next(s for s in steps if s.kind == "generate")
            ledger.record(generate_step, responses)
            run_id = step.action()
            record = store.get_run(run_id)
            assert record.kind == "judge-score" and record.status == "done"
            assert record.config["judge_model"] == "judge-m" and record.config.get("backend", "ollama") == backend  # Ollama configs keep their old shape
            assert record.metrics["score_mean"].value == 70.0 and record.metrics["score_mean"].n == 6 and record.metrics["parse_rate"].value == 1.0
        assert server.count(server.judge_paths[0]) >= 6


def test_an_unreachable_or_incomplete_judge_is_a_note_not_a_failure(tmp_path, monkeypatch):
    plan, _ = _plan(tmp_path, {"backend": "ollama", "model": "llama3", "host": ["http://127.0.0.1:9"]})
    note = judge_unreachable(plan.evaluations.judge)
    assert note.startswith("no judge reachable (cannot reach Ollama at http://127.0.0.1:9") and "start an Ollama server" in note
    with FakeOllama(models={"other": {}}) as server:  # the server answers, but not with the plan's judge model
        plan, _ = _plan(tmp_path, {"backend": "ollama", "model": "llama3", "host": [server.url]})
        assert "judge model 'llama3' is not available" in judge_unreachable(plan.evaluations.judge)
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    plan, _ = _plan(tmp_path, {"backend": "openai", "model": "m", "host": ["http://127.0.0.1:9/v1"], "api_key_env": "NO_SUCH_KEY_VAR"})
    assert "NO_SUCH_KEY_VAR" in judge_unreachable(plan.evaluations.judge)
