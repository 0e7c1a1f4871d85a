"""PARITY: evalkit's numbers are the `lm_eval` command line's, to the last digit.

Both run the tiny random GPT-2 (real tokenizer) on five subjects of the real MMLU test split,
from the same task definitions (evalkit's task folder, handed to lm_eval with --include_path),
with the same limit and batch size. The run evalkit stored is then checked for its shape.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

from evalkit.cli import main
from evalkit.mmlu import load_catalog, select_tasks
from evalkit.store import ResultsStore
from tests.mmlu.conftest import read_jsonl

SUBJECTS = ["abstract_algebra", "anatomy", "marketing", "world_religions", "high_school_psychology"]  # all 4 categories
LIMIT = 6
BATCH_SIZE = 4
CATEGORY_OF = {"abstract_algebra": "stem", "anatomy": "stem", "marketing": "other", "world_religions": "humanities", "high_school_psychology": "social_sciences"}


@pytest.fixture(scope="module")
def evalkit_run(tmp_path_factory, tiny_gpt2, mmlu_dir):
    """`evalkit mmlu ... --format json`, in-process: (store path, printed JSON)."""
    store_path = tmp_path_factory.mktemp("evalkit-store") / "evalkit.db"
    out = io.StringIO()
    args = ["--store", str(store_path), "mmlu", "--model", str(tiny_gpt2), "--subjects", ",".join(SUBJECTS)]
    args += ["--limit", str(LIMIT), "--batch-size", str(BATCH_SIZE), "--device", "cpu", "--data", str(mmlu_dir), "--format", "json"]
    with redirect_stdout(out):
        assert main(args) == 0
    return store_path, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def lm_eval_cli(tmp_path_factory, tiny_gpt2, mmlu_dir):
    """`python -m lm_eval` on the same task definitions: (results JSON, {task: logged samples})."""
    task_set, _ = select_tasks(load_catalog(), subjects=SUBJECTS, data=mmlu_dir)
    out = tmp_path_factory.mktemp("lm-eval-cli")
    command = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_gpt2}"]
    command += ["--tasks", "mmlu", "--include_path", str(task_set.include_path), "--limit", str(LIMIT)]
    command += ["--batch_size", str(BATCH_SIZE), "--device", "cpu", "--output_path", str(out / "results"), "--log_samples"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(next((out / "results").rglob("results_*.json")).read_text())
    samples = {
        path.name.removeprefix("samples_").rsplit("_", 1)[0]: read_jsonl(path) for path in (out / "results").rglob("samples_*.jsonl")
    }
    return results, samples


def _stored(store_path):
    with ResultsStore(store_path) as store:
        (run,) = store.list_runs(kind="mmlu")
        return run, dict(store.samples(run.id)), store.run_dir(run.id)


def test_numbers_equal_lm_eval_cli_to_the_last_digit(evalkit_run, lm_eval_cli):
    store_path, _ = evalkit_run
    cli_results, _ = lm_eval_cli
    run, _, _ = _stored(store_path)
    expected = {"acc": "mmlu"}
    expected |= {f"acc/{c}": f"mmlu_{c}" for c in set(CATEGORY_OF.values())}
    expected |= {f"acc/{s}": f"mmlu_{s}" for s in SUBJECTS}
    assert set(run.metrics) == set(expected)
    for name, key in expected.items():
        theirs = cli_results["results"][key]
        ours = run.metrics[name]
        assert ours.value == theirs["acc,none"], name
        assert ours.stderr == theirs["acc_stderr,none"], name
        assert ours.n == theirs["sample_len"], name
    for subject in SUBJECTS:
        assert run.metrics[f"acc/{subject}"].n == LIMIT == cli_results["n-samples"][f"mmlu_{subject}"]["effective"]
    assert run.metrics["acc"].n == LIMIT * len(SUBJECTS)


def test_every_question_equals_lm_eval_cli_logged_sample(evalkit_run, lm_eval_cli):
    store_path, _ = evalkit_run
    _, cli_samples = lm_eval_cli
    _, samples, _ = _stored(store_path)
    assert set(cli_samples) == {f"mmlu_{s}" for s in SUBJECTS}
    compared = 0
    for task, logged in cli_samples.items():
        subject = task.removeprefix("mmlu_")
        assert len(logged) == LIMIT
        for theirs in logged:
            ours = samples[f"{subject}/{theirs['doc_id']}"]
            # lm-eval writes its sample files with the numbers as strings (repr: exact)
            assert ours["loglikelihoods"] == [float(resp[0]) for resp in theirs["filtered_resps"]]
            assert ours["prompt"] == theirs["arguments"]["gen_args_0"]["arg_0"]
            assert ours["correct"] == (theirs["acc"] == 1.0)
            assert ours["gold"] == "ABCD"[int(theirs["target"])]
            compared += 1
    assert compared == LIMIT * len(SUBJECTS)


def test_stored_run_shape(evalkit_run, mmlu_dir, tiny_gpt2):
    store_path, printed = evalkit_run
    run, samples, run_dir = _stored(store_path)
    assert printed["run_id"] == run.id and run.status == "done"
    assert (run.kind, run.model, run.model_path) == ("mmlu", tiny_gpt2.name, str(tiny_gpt2.resolve()))
    assert len(run.model_hash) == 64
    digest = hashlib.sha256((mmlu_dir / "test.jsonl").read_bytes()).hexdigest()
    config = run.config
    assert config["data"] == {"source": "local", "folder": str(mmlu_dir.resolve()), "sha256": {"test": digest}}
    assert (config["eval_set"], config["num_fewshot"], config["limit"], config["backend"]) == ("mmlu", 0, LIMIT, "hf")
    assert config["precision"] == "fp32"
    assert config["subjects"] == sorted(SUBJECTS)
    assert config["lm_eval_version"] == load_catalog().lm_eval_version and len(config["template_hash"]) == 16

    records = {s: [r for r in read_jsonl(mmlu_dir / "test.jsonl") if r["subject"] == s][:LIMIT] for s in SUBJECTS}
    assert set(samples) == {f"{s}/{i}" for s in SUBJECTS for i in range(LIMIT)}
    for item_id, payload in samples.items():
        subject, doc_id = item_id.split("/")
        record = records[subject][int(doc_id)]
        assert set(payload) == {"subject", "category", "doc_id", "question", "choices", "prompt", "loglikelihoods", "pred", "gold", "correct"}
        assert (payload["subject"], payload["category"], payload["doc_id"]) == (subject, CATEGORY_OF[subject], int(doc_id))
        assert (payload["question"], payload["choices"]) == (record["question"], record["choices"])
        assert payload["gold"] == "ABCD"[record["answer"]]
        lls = payload["loglikelihoods"]
        assert len(lls) == 4 and payload["pred"] == "ABCD"[lls.index(max(lls))]
        assert payload["correct"] == (payload["pred"] == payload["gold"])
        assert payload["prompt"].endswith(f"D. {record['choices'][3]}\nAnswer:")
    # accuracy per subject is the share of correct questions stored for it
    for subject in SUBJECTS:
        correct = [samples[f"{subject}/{i}"]["correct"] for i in range(LIMIT)]
        assert run.metrics[f"acc/{subject}"].value == sum(correct) / LIMIT

    # lm-eval's own files beside the run, in lm-eval's layout
    (results_file,) = run_dir.rglob("results_*.json")
    assert printed["lm_eval_results"] == str(results_file)
    lm_eval_json = json.loads(results_file.read_text())
    assert lm_eval_json["results"]["mmlu"]["acc,none"] == run.metrics["acc"].value
    assert sorted(p.name.split("_20")[0] for p in run_dir.rglob("samples_*.jsonl")) == sorted(f"samples_mmlu_{s}" for s in SUBJECTS)


def test_printed_rows_are_categories_then_subjects_by_accuracy(evalkit_run):
    store_path, printed = evalkit_run
    run, _, _ = _stored(store_path)
    rows = printed["rows"]
    assert [(r["level"], r["name"]) for r in rows[:5]] == [
        ("overall", "mmlu"), ("category", "stem"), ("category", "other"), ("category", "social_sciences"), ("category", "humanities")
    ]
    subject_rows = rows[5:]
    assert sorted(r["name"] for r in subject_rows) == sorted(SUBJECTS)
    accs = [r["acc"] for r in subject_rows]
    assert accs == sorted(accs, reverse=True)
    for r in rows:
        metric = run.metrics["acc" if r["level"] == "overall" else f"acc/{r['name']}"]
        assert (r["acc"], r["stderr"], r["n"]) == (metric.value, metric.stderr, metric.n)


def test_saved_lm_eval_json_reads_back_as_the_same_run(evalkit_run, tmp_path):
    """The lm-eval results file beside the run is a real lm-eval file: evalkit's importer for
    lm-eval files (interop) reads it back to the same metrics."""
    from evalkit.interop import import_results

    store_path, _ = evalkit_run
    run, _, run_dir = _stored(store_path)
    (results_file,) = run_dir.rglob("results_*.json")
    with ResultsStore(tmp_path / "imported.db") as other:
        imported = other.metrics(import_results(other, results_file))
    assert {k: m.as_dict() for k, m in imported.items()} == {k: m.as_dict() for k, m in run.metrics.items()}
