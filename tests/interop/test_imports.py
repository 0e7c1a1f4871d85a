"""`evalkit import alpaca-eval` and `evalkit import responses`: real files in, runs out, bad files refused."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import InputError
from evalkit.interop import import_annotations, import_responses, read_responses
from evalkit.items import instruction_item_id
from tests.conftest import shared_path
from tests.interop.conftest import annotations_path

OPENHERMES = "OpenHermes-2.5-Mistral-7B"


def test_import_annotations_cli(run_cli, tmp_path, alpaca_leaderboard):
    path = annotations_path(OPENHERMES)
    rc, out, err = run_cli("import", "alpaca-eval", path)
    assert rc == 0, err
    run_id = out.strip()
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path / "evalkit.db") as store:
        record = store.get_run(run_id)
        assert (record.kind, record.model, record.status) == ("judge-pairwise", OPENHERMES, "done")
        assert record.config["reference"] == "gpt4_1106_preview"
        assert record.config["judge_model"] == "weighted_alpaca_eval_gpt4_turbo"
        assert record.metrics["win_rate"].value == pytest.approx(float(alpaca_leaderboard[OPENHERMES]["win_rate"]), abs=1e-6)
        samples = dict(store.samples(run_id))
        assert len(samples) == 805
        first = json.loads(path.read_text(encoding="utf-8"))[0]
        payload = samples[instruction_item_id(first["instruction"], "")]
        assert payload["preference"] == first["preference"] and payload["status"] == "ok"
        assert payload["output_2"] == first["output_2"] and payload["raw_completion"] == first["raw_completion"]
    # the same file again is the same run; under another name it is another model
    assert run_cli("import", "alpaca-eval", path)[1].strip() == run_id
    rc, out, _ = run_cli("import", "alpaca-eval", path, "--name", "hermes")
    assert rc == 0 and out.strip() != run_id


def test_unparsed_annotations_are_kept_and_not_counted(store, tmp_path):
    records = [
        {"instruction": f"q{i}", "output_1": "a", "generator_1": "base", "output_2": "bb", "generator_2": "m", "preference": p}
        for i, p in enumerate([2.0, None, 1.0, float("nan")])
    ]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(records), encoding="utf-8")  # NaN written bare, as pandas writes it
    run_id = import_annotations(store, path)
    m = store.metrics(run_id)
    assert m["n_total"].value == 2 and m["win_rate"].value == 50 and m["parse_rate"].value == 0.5
    statuses = [p["status"] for _, p in store.samples(run_id)]
    assert statuses == ["ok", "unparsed", "ok", "unparsed"]


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"instruction": "q", "output": "a", "generator": "m"}], "no 'preference' field"),
        ([{"instruction": "q", "output_1": "a", "generator_1": "b", "output_2": "c", "generator_2": "m", "preference": "2"}], "record 0, field 'preference'"),
        ([{"instruction": "q", "output_1": "a", "generator_1": "b", "output_2": "c", "generator_2": "m", "preference": 2.5}], "expected a number in [1, 2]"),
        ([{"output_1": "a", "generator_1": "b", "output_2": "c", "generator_2": "m", "preference": 2}], "record 0, field 'instruction'"),
        ([{"instruction": "q", "output_1": "a", "generator_1": "b", "output_2": "c", "preference": 2}], "field 'generator_2'"),
        (
            [
                {"instruction": "q", "output_1": "a", "generator_1": "b", "output_2": "c", "generator_2": "m", "preference": 2},
                {"instruction": "r", "output_1": "a", "generator_1": "b", "output_2": "c", "generator_2": "n", "preference": 2},
            ],
            "2 different generator_2 values",
        ),
        (
            [
                {"instruction": "q", "output_1": "a", "generator_1": "b", "output_2": "c", "generator_2": "m", "preference": 2},
                {"instruction": "q", "output_1": "a", "generator_1": "b", "output_2": "d", "generator_2": "m", "preference": 1},
            ],
            "record 1, field 'instruction': same instruction as record 0",
        ),
        ([1, 2], "record 0: is a JSON int, not an object"),
    ],
)
def test_bad_annotations(store, tmp_path, records, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_annotations(store, path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert store.list_runs() == []  # nothing half-imported


def test_not_json_names_file_and_line(run_cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"instruction": "q",\n "preference": }]', encoding="utf-8")
    rc, _, err = run_cli("import", "alpaca-eval", path)
    assert rc == 2 and f"{path}: line 2: not valid JSON" in err and "expected AlpacaEval annotations" in err
    rc, _, err = run_cli("import", "alpaca-eval", tmp_path / "missing.json")
    assert rc == 2 and "no such file" in err


def test_read_book_responses():
    records, field = read_responses(shared_path("book-ch07", "instruction-data-with-response.json"))
    assert field == "model_response" and len(records) == 110
    assert records[0] == {
        "instruction": "Rewrite the sentence using a simile.",
        "input": "The car is very fast.",
        "output": "The car is as fast as lightning.",
        "response": "The car is as fast as a bullet.",
        "generator": None,
        "dataset": None,
    }


def test_import_book_responses_cli(run_cli, tmp_path):
    path = shared_path("book-ch07", "instruction-data-with-response.json")
    rc, _, err = run_cli("import", "responses", path)
    assert rc == 2 and "pass --name" in err
    rc, out, err = run_cli("import", "responses", path, "--name", "gpt2-medium-book")
    assert rc == 0, err
    assert "field 'model_response'" in err and "record 99 repeats an earlier instruction" in err
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path / "evalkit.db") as store:
        record = store.get_run(out.strip())
        assert (record.kind, record.model) == ("generate", "gpt2-medium-book")
        samples = dict(store.samples(record.id))
        assert len(samples) == 109 and record.metrics["n"].value == 109
        payload = samples[instruction_item_id("Rewrite the sentence using a simile.", "The car is very fast.")]
        assert payload["response"] == "The car is as fast as a bullet." and payload["output"] == "The car is as fast as lightning."
        assert payload["prompt"] is None and payload["tokens"] is None
        records = json.loads(path.read_text(encoding="utf-8"))
        first_kept = {instruction_item_id(r["instruction"], r["input"]): r for r in reversed(records)}
        expected = sum(len(r["model_response"]) for r in first_kept.values()) / 109
        assert record.metrics["avg_length"].value == pytest.approx(expected)


def test_import_alpaca_model_outputs_and_jsonl(store, tmp_path):
    path = shared_path("alpaca_eval", "alpaca_eval_gpt4_1106_preview_reference.json")
    records, field = read_responses(path)
    assert field == "output" and records[0]["generator"] == "gpt4_1106_preview" and records[0]["output"] == ""
    run_id = import_responses(store, path)
    record = store.get_run(run_id)
    assert record.model == "gpt4_1106_preview" and store.sample_count(run_id) == 805
    assert import_responses(store, path) == run_id
    jsonl = tmp_path / "out.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n\n" for r in json.loads(path.read_text(encoding="utf-8"))[:3]), encoding="utf-8")
    records, field = read_responses(jsonl)
    assert field == "output" and len(records) == 3 and records[2]["dataset"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('[{"instruction": "q", "output": "a"}]', "no response field in the records (found: instruction, output)"),
        ('[{"instruction": "q", "model_response": "a"}, {"instruction": "r"}]', "record 1, field 'model_response': missing"),
        ('[{"instruction": "q", "model_response": 3}]', "record 0, field 'model_response': is int"),
        ('[{"model_response": "x"}]', "record 0, field 'instruction': missing"),
        ('{"instruction": "q", "model_response": "a"}\n{"instruction": \n', "line 2: not valid JSON"),
        ('[{"instruction": "q", "output_1": "a", "output_2": "b", "preference": 1}]', "use `evalkit import alpaca-eval`"),
        ("", "empty file"),
        ("[]", "no records"),
    ],
)
def test_bad_responses(store, tmp_path, text, message):
    path = tmp_path / "responses.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_responses(store, path, name="m")
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert store.list_runs() == []


def test_evalkit_jsonl_export_of_a_generate_run_imports_back(store, tmp_path):
    path = shared_path("book-ch07", "instruction-data-with-response.json")
    run_id = import_responses(store, path, name="gpt2-medium-book")
    from evalkit.runs_export import export_run

    jsonl = export_run(store, run_id, "jsonl", tmp_path / "run.jsonl")
    records, field = read_responses(jsonl)
    assert field == "response" and len(records) == 109
    back = import_responses(store, jsonl)  # the payload's generator names the model
    assert store.get_run(back).model == "gpt2-medium-book"
    assert {k: p["response"] for k, p in store.samples(back)} == {k: p["response"] for k, p in store.samples(run_id)}


def test_evalkit_csv_export_of_a_generate_run_imports_back(store, tmp_path):
    run_id = import_responses(store, shared_path("book-ch07", "instruction-data-with-response.json"), name="book")
    from evalkit.runs_export import export_run

    path = export_run(store, run_id, "csv", tmp_path / "run.csv")
    records, field = read_responses(path)
    assert field == "response" and len(records) == 109
    back = import_responses(store, path)
    assert store.get_run(back).model == "book"
    copy = dict(store.samples(back))
    assert {k: (p["instruction"], p["input"], p["response"]) for k, p in store.samples(run_id)} == {
        k: (p["instruction"], p["input"], p["response"]) for k, p in copy.items()
    }


def test_csv_responses_keep_empty_answers(store, tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text('instruction,input,output,model_response\n"Say ""hi"", then stop.",,hi,\nCount,1 2,3,"3, then 4"\n', encoding="utf-8")
    records, field = read_responses(path)
    assert field == "model_response"
    assert [(r["instruction"], r["input"], r["response"]) for r in records] == [('Say "hi", then stop.', "", ""), ("Count", "1 2", "3, then 4")]
