"""Real judge runs (evalkit.judge against the loopback Ollama server) compared end to end:
two models' responses from the book's eval-example-data.json, scored by a scripted judge."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from evalkit.compare import B_BETTER, compare_models
from evalkit.items import instruction_item_id
from tests.conftest import shared_path

import evalkit.judge as judge  # noqa: E402
import tests.judge.fake_ollama as fake_ollama  # noqa: E402

N_RECORDS = 40


def _generate_run(store, records, model, key):
    with store.start_run("generate", model, {"eval_set": "book-example", "n": len(records)}) as run:
        run.add_samples(
            (instruction_item_id(r["instruction"], r["input"]),
             {"instruction": r["instruction"], "input": r["input"], "output": r["output"], "response": r[key]})
            for r in records
        )
    return run.id


def test_two_real_judge_score_runs_are_comparable_and_paired(store):
    records = json.loads(shared_path("book-ch07", "eval-example-data.json").read_text())[:N_RECORDS]
    runs = {m: _generate_run(store, records, m, f"{m} response") for m in ("model 1", "model 2")}
    # the scripted judge gives model 2's answers (where they differ from model 1's) 20 more points
    second_only = [r["model 2 response"].strip() for r in records if r["model 2 response"].strip() not in r["model 1 response"]]

    def score(request):
        return {"score": 75 if any(text and text in request.prompt for text in second_only) else 55}

    with fake_ollama.FakeOllama(models={"llama3": {}}) as server:
        server.script(score)
        judged = {
            m: judge.run_judge(store, responses_run=run, judge_model="llama3", mode="score", hosts=[server.url], progress=False)
            for m, run in runs.items()
        }
    row = compare_models(store, "model 1", "model 2", bootstrap=1000)[0]
    assert row["mode"] == "judge-score" and row["refused"] is None  # same judge, template, options: comparable
    assert row["runs"] == {"a": judged["model 1"], "b": judged["model 2"]}
    scores = {m: dict((i, p["score"]) for i, p in store.samples(judged[m])) for m in judged}
    ids = [i for i in scores["model 1"] if scores["model 1"][i] is not None and scores["model 2"].get(i) is not None]
    a = np.array([scores["model 1"][i] for i in ids], float)
    b = np.array([scores["model 2"][i] for i in ids], float)
    assert row["n"] == len(ids) >= N_RECORDS - 2
    assert (row["a"], row["b"]) == (pytest.approx(a.mean()), pytest.approx(b.mean()))
    assert row["p_value"] == pytest.approx(stats.wilcoxon(b - a).pvalue)
    assert row["diff"] > 5 and row["verdict"] == B_BETTER


def test_real_pairwise_runs_common_reference_and_head_to_head(store):
    from tests.judge.test_pairwise import length_judge  # prefers the longer output, in proportion

    records = json.loads(shared_path("book-ch07", "eval-example-data.json").read_text())[:N_RECORDS]
    runs = {m: _generate_run(store, records, m, f"{m} response") for m in ("model 1", "model 2")}
    with fake_ollama.FakeOllama(models={"llama3": {}}) as server:
        server.script(length_judge)
        options = {"judge_model": "llama3", "mode": "pairwise", "hosts": [server.url], "progress": False}
        judged = {m: judge.run_judge(store, responses_run=run, **options) for m, run in runs.items()}
        head = judge.run_judge(store, responses_run=runs["model 2"], reference=runs["model 1"], **options)
    row = compare_models(store, "model 1", "model 2", bootstrap=1000)[0]
    assert row["mode"] == "judge-pairwise" and row["refused"] is None
    assert row["runs"] == {"a": judged["model 1"], "b": judged["model 2"]}  # the head-to-head run kept apart
    win = {m: store.get_run(judged[m]).metrics for m in judged}
    assert all(w["n_total"].value == N_RECORDS for w in win.values())  # every verdict parsed
    assert row["n"] == N_RECORDS
    # AlpacaEval's win rates as the judge run stored them (interop's metrics), and their difference
    assert row["a"] == pytest.approx(win["model 1"]["win_rate"].value)
    assert row["b"] == pytest.approx(win["model 2"]["win_rate"].value)
    assert row["diff"] == pytest.approx(win["model 2"]["win_rate"].value - win["model 1"]["win_rate"].value)
    h2h = row["detail"]["head_to_head"]
    assert h2h["runs"] == {"head_to_head": head}
    assert h2h["b"] == pytest.approx(store.get_run(head).metrics["win_rate"].value)
