"""`runs export --format alpaca-eval`: AlpacaEval's layouts, read back by evalkit's imports."""

from __future__ import annotations

import json

import pytest

from evalkit.interop import import_annotations, import_responses
from evalkit.interop.alpaca_eval import EXPORT_ANNOTATION_KEYS
from tests.conftest import shared_path
from tests.interop.conftest import annotations_path


def _metrics(store, run_id):
    return {k: (m.value, m.stderr, m.n) for k, m in store.metrics(run_id).items()}


def test_annotations_export_layout_and_round_trip(store, run_cli, tmp_path, book_pairwise_run):
    db = store.path
    out = tmp_path / "exported"
    out.mkdir()
    rc, _, err = run_cli("runs", "export", book_pairwise_run, "--format", "alpaca-eval", "--out", out, store=db)
    assert rc == 0, err
    path = out / "annotations.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == 40
    assert all(tuple(r)[: len(EXPORT_ANNOTATION_KEYS)] == EXPORT_ANNOTATION_KEYS for r in records)
    samples = [p for _, p in store.samples(book_pairwise_run)]
    with_input = next(i for i, p in enumerate(samples) if p["input"])
    r = records[with_input]
    assert r["instruction"] == f"{samples[with_input]['instruction']}\n\n{samples[with_input]['input']}" and r["input"] == samples[with_input]["input"]
    assert (r["generator_1"], r["generator_2"], r["annotator"]) == ("model-1", "model-2", "llama3.1:8b")
    assert [r["preference"] for r in records] == [p["preference"] for p in samples]  # null stays null
    # the export imports back to the same items and the same numbers
    again = import_annotations(store, path)
    assert dict(store.samples(again)).keys() == dict(store.samples(book_pairwise_run)).keys()
    assert _metrics(store, again) == _metrics(store, book_pairwise_run)


def test_published_annotations_survive_export(store, tmp_path):
    source = annotations_path("FuseChat-Llama-3.2-1B-Instruct")
    run_id = import_annotations(store, source)
    from evalkit.runs_export import export_run

    path = export_run(store, run_id, "alpaca-eval", tmp_path / "a.json")
    original = json.loads(source.read_text(encoding="utf-8"))
    exported = json.loads(path.read_text(encoding="utf-8"))
    for key in EXPORT_ANNOTATION_KEYS:
        assert [r[key] for r in exported] == [r.get(key) for r in original], key  # FuseChat has no raw_completion
    assert _metrics(store, import_annotations(store, path, name="again")) == _metrics(store, run_id)


def test_model_outputs_export_round_trip(store, run_cli, tmp_path):
    book = shared_path("book-ch07", "instruction-data-with-response.json")
    run_id = import_responses(store, book, name="gpt2-medium-book")
    path = tmp_path / "model_outputs.json"
    rc, _, err = run_cli("runs", "export", run_id, "--format", "alpaca-eval", "--out", path, store=store.path)
    assert rc == 0, err
    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == 109
    assert set(records[0]) >= {"instruction", "output", "generator", "dataset"}
    assert records[0]["instruction"] == "Rewrite the sentence using a simile.\n\nThe car is very fast."
    assert records[0]["output"] == "The car is as fast as a bullet." and records[0]["generator"] == "gpt2-medium-book"
    back = import_responses(store, path)
    assert store.get_run(back).model == "gpt2-medium-book"
    original, copy = dict(store.samples(run_id)), dict(store.samples(back))
    assert original.keys() == copy.keys()
    assert all(copy[k]["response"] == original[k]["response"] and copy[k]["input"] == original[k]["input"] for k in original)


def test_wrong_kind_for_format(store, run_cli, tmp_path, book_pairwise_run):
    with store.start_run("mmlu", "m", {}) as run:
        run.log_metric("acc", 0.5)
    for fmt, expected in [
        ("alpaca-eval", "has kind 'mmlu'; the alpaca-eval format exports judge-pairwise runs (annotations.json) and generate runs"),
        ("arena", "has kind 'mmlu'; the arena format exports human runs and judge-pairwise runs"),
    ]:
        rc, _, err = run_cli("runs", "export", run.id, "--format", fmt, store=store.path)
        assert rc == 2 and expected in err
    rc, _, err = run_cli("runs", "export", book_pairwise_run, "--format", "lm-eval", store=store.path)
    assert rc == 2 and "has kind 'judge-pairwise'; the lm-eval format exports mmlu runs" in err


@pytest.mark.parametrize("fmt", ["alpaca-eval", "arena"])
def test_export_to_stdout_is_valid(store, run_cli, book_pairwise_run, fmt):
    rc, out, _ = run_cli("runs", "export", book_pairwise_run, "--format", fmt, store=store.path)
    assert rc == 0
    if fmt == "alpaca-eval":
        assert len(json.loads(out)) == 40
    else:
        assert len([json.loads(line) for line in out.splitlines()]) == 40 - 3  # the 3 unparsed verdicts (items 5, 18, 31) are no battles
