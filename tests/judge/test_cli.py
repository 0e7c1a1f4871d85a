"""`evalkit judge` on the command line, against the loopback Ollama server."""

from __future__ import annotations

import json
import math
import re

import pytest

from tests.conftest import shared_path
from tests.judge.fake_ollama import Reply, Token


def test_score_a_responses_file(run_cli, fake_ollama, tmp_path):
    book = shared_path("book-ch07", "instruction-data-with-response.json")
    fake_ollama.script(lambda req: {"score": 60})
    args = ["judge", "--responses", book, "--host", fake_ollama.url, "--no-progress", "--format", "json"]
    rc, out, err = run_cli(*args)
    assert rc == 0, err
    assert "read from field 'model_response'" in err and "'instruction-data-with-response'" in err
    run = json.loads(out)
    assert run["kind"] == "judge-score" and run["model"] == "instruction-data-with-response"
    assert run["metrics"]["score_mean"] == {"value": 60.0, "stderr": 0.0, "n": 109}
    assert run["config"]["judge_model"] == "llama3" and run["config"]["options"]["num_ctx"] == 2048
    calls = fake_ollama.judge_calls
    rc, out, err = run_cli(*args)
    assert rc == 0 and json.loads(out)["id"] == run["id"] and fake_ollama.judge_calls == calls  # cached, reused
    rc, out, _ = run_cli(*args[:-2], "--format", "csv")
    assert out.splitlines()[0] == "metric,value,stderr,n" and "score_mean,60.0,0.0,109" in out


def test_pairwise_on_alpaca_eval_with_real_outputs(run_cli, fake_ollama, tmp_path, monkeypatch):
    reference = shared_path("alpaca_eval", "alpaca_eval_gpt4_1106_preview_reference.json")
    annotations = json.loads(shared_path("alpaca_eval", "annotations", "OpenHermes-2.5-Mistral-7B.weighted_alpaca_eval_gpt4_turbo.json").read_text())
    outputs = tmp_path / "model_outputs.json"
    outputs.write_text(json.dumps([{"instruction": a["instruction"], "output": a["output_2"], "generator": a["generator_2"], "dataset": a["dataset"]} for a in annotations]))
    monkeypatch.setenv("EVALKIT_ALPACA_EVAL", str(reference))

    def by_length(request):  # an order-free judge: P(output better) proportional to its length
        text = request.messages[1]["content"]
        a, b = re.search(r"## Output 1\n(.*?)\n\n## Output 2\n(.*)\n\nWhich output is better\?", text, re.S).groups()
        probs = {"1": max(len(a), 1) / (max(len(a), 1) + max(len(b), 1))}
        probs["2"] = 1 - probs["1"]
        top = max(probs, key=probs.get)
        return Reply(tokens=[Token(top, math.log(probs[top]), {t: math.log(p) for t, p in probs.items()})])

    fake_ollama.script(by_length)
    rc, out, err = run_cli("judge", "--responses", outputs, "--eval-set", "alpaca-eval", "--host", fake_ollama.url,
                           "--concurrency", "8", "--no-progress", "--format", "json")
    assert rc == 0, err
    run = json.loads(out)
    assert run["kind"] == "judge-pairwise" and run["model"] == "OpenHermes-2.5-Mistral-7B"
    assert run["config"]["order"] == "random" and run["config"]["eval_set"] == "alpaca-eval"
    refs = {r["instruction"]: r["output"] for r in json.loads(reference.read_text())}
    identical = sum(refs[a["instruction"]] == a["output_2"] for a in annotations)
    assert identical == 3 and fake_ollama.judge_calls == 805 - identical  # one seeded order per instruction
    expected = []
    for a in annotations:
        l1, l2 = max(len(refs[a["instruction"]]), 1), max(len(a["output_2"]), 1)
        expected.append(l2 / (l1 + l2) if refs[a["instruction"]] != a["output_2"] else 0.5)
    metrics = run["metrics"]
    assert metrics["n_total"]["value"] == 805
    assert metrics["win_rate"]["value"] == pytest.approx(100 * sum(expected) / 805, abs=1e-6)
    assert metrics["avg_length"]["value"] == int(sum(len(a["output_2"]) for a in annotations) / 805)


def test_clear_errors_exit_2(run_cli, fake_ollama):
    book = shared_path("book-ch07", "instruction-data-with-response.json")
    rc, _, err = run_cli("judge", "--responses", book, "--host", "http://127.0.0.1:9", "--no-progress")
    assert rc == 2 and "start Ollama with `ollama serve`" in err and "Traceback" not in err
    rc, _, err = run_cli("judge", "--responses", book, "--host", fake_ollama.url, "--judge-model", "llama3.1:8b", "--no-progress")
    assert rc == 2 and "run `ollama pull llama3.1:8b`" in err
    rc, _, err = run_cli("judge", "--responses", book, "--host", fake_ollama.url, "--mode", "pairwise",
                         "--reference", "no-such-run", "--no-progress")
    assert rc == 2 and "no run 'no-such-run'" in err


def test_books_own_prompt_as_template(run_cli, fake_ollama, tmp_path):
    book = shared_path("book-ch07", "instruction-data-with-response.json")
    records = json.loads(book.read_text())[:3]
    small = tmp_path / "three.json"
    small.write_text(json.dumps(records))
    template = tmp_path / "book-score.txt"
    template.write_text(
        "---\nformat: none\n---\nGiven the input `{formatted_input}` and correct output `{output}`, score the model "
        "response `{response}` on a scale from 0 to 100, where 100 is the best score. Respond with the integer number only."
    )
    fake_ollama.script(lambda req: "85")
    # with the progress bar (on stderr)
    rc, out, err = run_cli("judge", "--responses", small, "--host", fake_ollama.url, "--prompt-template", template,
                           "--format", "json")
    assert rc == 0, err
    run = json.loads(out)
    assert run["metrics"]["score_mean"]["value"] == 85 and run["config"]["template"]["name"] == "book-score"
    request = fake_ollama.requests[0]
    assert request.format is None and len(request.messages) == 1
    assert request.messages[0]["content"].startswith("Given the input `Below is an instruction that describes a task.")


def test_reference_file_and_missing_references(run_cli, fake_ollama, tmp_path):
    records = json.loads(shared_path("book-ch07", "instruction-data-with-response.json").read_text())[:3]
    responses = tmp_path / "mine.json"
    responses.write_text(json.dumps(records))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps([{**r, "model_response": "I do not know.", "generator": "base-model"} for r in records]))
    fake_ollama.script(lambda req: Reply(tokens=[Token("2", math.log(0.75), {"1": math.log(0.25)})]))
    rc, out, err = run_cli("judge", "--responses", responses, "--mode", "pairwise", "--reference", baseline,
                           "--host", fake_ollama.url, "--no-progress", "--format", "json")
    assert rc == 0, err
    run = json.loads(out)
    assert run["config"]["reference"]["source"] == "file:baseline.json"
    # 0.75 for whatever is shown second: 1.75 reference-first, 3 - 1.75 model-first -> 1.5
    assert run["metrics"]["win_rate"]["value"] == pytest.approx(50.0)
    baseline.write_text(json.dumps([{**r, "model_response": "I do not know."} for r in records[:2]]))
    rc, _, err = run_cli("judge", "--responses", responses, "--mode", "pairwise", "--reference", baseline,
                         "--name", "again", "--host", fake_ollama.url, "--no-progress")
    assert rc == 2 and "no reference output for" in err and "--reference" in err


def test_model_generates_then_judges(store, fake_ollama, tmp_path, tiny_gpt2):
    from evalkit.judge.pipeline import judge

    records = json.loads(shared_path("book-ch07", "instruction-data.json").read_text())[:3]
    eval_file = tmp_path / "eval.json"
    eval_file.write_text(json.dumps(records))
    fake_ollama.script(lambda req: {"score": 5})
    # the library call behind `evalkit judge --model`, with short generations to keep the test quick
    run_id = judge(store, model=str(tiny_gpt2), eval_set=str(eval_file), name="tiny", hosts=[fake_ollama.url],
                   generate_options={"max_new_tokens": 8, "progress": False}, progress=False)
    run = store.get_run(run_id)
    assert run.model == "tiny" and run.config["eval_set"] == "file:eval.json"
    assert run.metrics["score_mean"].n == 3
    generate = store.get_run(run.config["responses_run"])
    assert generate.kind == "generate" and generate.model == "tiny" and generate.config["max_new_tokens"] == 8
    # the same call again reuses both runs: no generation, no judge request
    calls = fake_ollama.judge_calls
    assert judge(store, model=str(tiny_gpt2), eval_set=str(eval_file), name="tiny", hosts=[fake_ollama.url],
                 generate_options={"max_new_tokens": 8, "progress": False}, progress=False) == run_id
    assert fake_ollama.judge_calls == calls


def test_preflight_fails_in_seconds_before_generating_and_leaves_no_run(run_cli, tmp_path, tiny_gpt2):
    import time

    from evalkit.store import ResultsStore

    eval_file = tmp_path / "eval.json"
    eval_file.write_text(json.dumps(json.loads(shared_path("book-ch07", "instruction-data.json").read_text())[:50]))
    started = time.monotonic()
    rc, _, err = run_cli("judge", "--model", tiny_gpt2, "--eval-set", eval_file, "--host", "http://127.0.0.1:9",
                         "--no-progress")
    assert rc == 2 and "start Ollama with `ollama serve`" in err and "Traceback" not in err
    assert time.monotonic() - started < 15  # no generation happened first (that takes minutes)
    with ResultsStore(tmp_path / "evalkit.db") as store:
        assert store.list_runs() == []
    # an unknown template is found before generating too
    rc, _, err = run_cli("judge", "--model", tiny_gpt2, "--eval-set", eval_file, "--prompt-template", "alpaca-eval:nope",
                         "--no-progress")
    assert rc == 2 and "no annotator 'nope'" in err


def test_responses_takes_a_generate_run_id(run_cli, fake_ollama, tmp_path):
    from evalkit.store import ResultsStore
    from tests.judge.conftest import add_generate_run

    records = json.loads(shared_path("book-ch07", "instruction-data-with-response.json").read_text())[:4]
    with ResultsStore(tmp_path / "evalkit.db") as store:
        gen = add_generate_run(store, records)
    fake_ollama.script(lambda req: {"score": 70})
    rc, out, err = run_cli("judge", "--responses", gen, "--host", fake_ollama.url, "--no-progress", "--format", "json")
    assert rc == 0, err
    run = json.loads(out)
    assert run["config"]["responses_run"] == gen and run["metrics"]["score_mean"]["value"] == 70.0
    rc, _, err = run_cli("judge", "--responses", run["id"], "--host", fake_ollama.url, "--no-progress")
    assert rc == 2 and "judge-score run" in err and "generate run or a file" in err
    rc, _, err = run_cli("judge", "--responses", "no-such-file-or-run", "--host", fake_ollama.url, "--no-progress")
    assert rc == 2 and "no such file, and no run with that id" in err


def test_list_templates_one_line_each(run_cli):
    rc, out, err = run_cli("judge", "--list-templates")
    assert rc == 0, err
    names = [line.split("\t")[0] for line in out.splitlines()]
    assert names[:2] == ["evalkit", "book"]
    assert "alpaca-eval:weighted_alpaca_eval_gpt4_turbo" in names and "alpaca-eval:alpaca_eval_gpt4" in names
    assert "alpaca-eval:alpaca_eval_gpt4_turbo_fn" not in names  # function calling: not runnable here
    assert all(len(line.split("\t")) == 2 for line in out.splitlines())
