"""Chatbot Arena battles: export of human and judge-pairwise runs, import as human runs."""

from __future__ import annotations

import csv
import json

import pytest

from evalkit.errors import InputError
from evalkit.interop import import_annotations
from evalkit.interop.arena import battles_from_run, import_battles, read_battles
from evalkit.runs_export import export_run
from tests.interop.conftest import ANNOTATION_MODELS, annotations_path

BATTLE_KEYS = ["question_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "tstamp", "conversation_a", "conversation_b"]


@pytest.fixture
def alpaca_battles(store, tmp_path):
    """The three published AlpacaEval annotation files as one Arena battles file (JSON Lines)."""
    text = ""
    for model in ANNOTATION_MODELS:
        run_id = import_annotations(store, annotations_path(model))
        text += export_run(store, run_id, "arena", tmp_path / f"{model}.jsonl").read_text(encoding="utf-8")
    path = tmp_path / "battles.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_judge_pairwise_run_as_battles(store, book_pairwise_run):
    battles = battles_from_run(store, book_pairwise_run)
    samples = [p for _, p in store.samples(book_pairwise_run) if p["preference"] is not None]
    assert len(battles) == len(samples) == 37
    assert all(list(b)[: len(BATTLE_KEYS)] == BATTLE_KEYS for b in battles)
    for b, p in zip(battles, samples):
        expected = "model_b" if p["preference"] > 1.5 else "model_a" if p["preference"] < 1.5 else "tie"
        assert (b["model_a"], b["model_b"], b["winner"], b["judge"]) == ("model-1", "model-2", expected, "llama3.1:8b")
        assert b["conversation_b"][1] == {"role": "assistant", "content": p["output_2"]}
    m = store.metrics(book_pairwise_run)
    counts = [sum(b["winner"] == w for b in battles) for w in ("model_b", "model_a", "tie")]
    assert counts == [m["n_wins"].value, m["n_wins_base"].value, m["n_draws"].value]


def test_import_battles_as_human_run_and_round_trip(store, run_cli, alpaca_battles, tmp_path):
    rc, out, err = run_cli("import", "arena", alpaca_battles, store=store.path)
    assert rc == 0, err
    record = store.get_run(out.strip())
    assert record.kind == "human"
    assert record.model == " vs ".join(sorted([*ANNOTATION_MODELS, "gpt4_1106_preview"]))
    assert record.metrics["n_votes"].value == 805 * 3 and record.metrics["n_raters"].value == 1
    votes = dict(store.samples(record.id))
    source = [json.loads(line) for line in alpaca_battles.read_text(encoding="utf-8").splitlines()]
    first = votes[f"{source[0]['question_id']}/weighted_alpaca_eval_gpt4_turbo"]
    assert first["outcome"] == {"model_a": "a", "model_b": "b", "tie": "tie"}[source[0]["winner"]]
    assert first["response_b"] == source[0]["conversation_b"][1]["content"]
    assert first["instruction"] == source[0]["conversation_a"][0]["content"]
    # each question was judged for three models by the same judge: the pair ids stay distinct
    assert len(votes) == 805 * 3
    # the human run exports back to the same battles (CSV this time)
    csv_path = tmp_path / "again.csv"
    rc, _, err = run_cli("runs", "export", record.id, "--format", "arena", "--out", csv_path, store=store.path)
    assert rc == 0, err
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == BATTLE_KEYS
    assert [(r["model_a"], r["model_b"], r["winner"], r["judge"]) for r in rows] == [
        (b["model_a"], b["model_b"], b["winner"], b["judge"]) for b in source
    ]
    assert json.loads(rows[0]["conversation_a"]) == source[0]["conversation_a"]
    assert float(rows[0]["tstamp"]) == pytest.approx(source[0]["tstamp"], abs=1e-3)
    # and the CSV imports to the same votes
    again = import_battles(store, csv_path, name="from-csv")
    copy = dict(store.samples(again))
    assert {k: (v["outcome"], v["model_a"], v["model_b"]) for k, v in copy.items() if "#" not in k} == {
        k: (v["outcome"], v["model_a"], v["model_b"]) for k, v in votes.items() if "#" not in k
    }


def test_human_votes_with_inputs_round_trip(store, tmp_path):
    votes = [
        {"pair_id": "p1", "rater": "ana", "outcome": "both_bad", "model_a": "x", "model_b": "y", "instruction": "Translate.",
         "input": "Hola", "response_a": "Hello", "response_b": "Hi", "comment": "", "timestamp": "2026-11-25T10:00:00.000+00:00", "seconds": 3.0},
        {"pair_id": "p1", "rater": "ben", "outcome": "a", "model_a": "x", "model_b": "y", "instruction": "Translate.",
         "input": "Hola", "response_a": "Hello", "response_b": "Hi", "comment": "", "timestamp": "2026-11-25T10:01:00.000+00:00", "seconds": 2.0},
    ]
    with store.start_run("human", "x vs y", {"bundle": "b1"}) as run:
        run.add_samples((f"{v['pair_id']}/{v['rater']}", v) for v in votes)
    path = export_run(store, run.id, "arena", tmp_path / "b.json")  # not .csv: JSON Lines
    battles = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [b["winner"] for b in battles] == ["tie (bothbad)", "model_a"]
    assert battles[0]["conversation_a"][0]["content"] == "Translate.\n\nHola" and battles[0]["input"] == "Hola"
    assert battles[0]["tstamp"] == 1795600800.0
    back = read_battles(path)
    for original, copy in zip(votes, back):
        for key in ("pair_id", "rater", "outcome", "model_a", "model_b", "instruction", "input", "response_a", "response_b", "timestamp"):
            assert copy[key] == original[key], key


def test_json_list_of_battles(store, tmp_path):
    path = tmp_path / "clean_battle.json"
    path.write_text(json.dumps([
        {"model_a": "a", "model_b": "b", "winner": "model_b", "judge": "arena_user_1", "tstamp": 1700000000.5},
        {"model_a": "b", "model_b": "c", "winner": "tie", "judge": "arena_user_2"},
    ]), encoding="utf-8")
    votes = read_battles(path)
    assert [(v["pair_id"], v["rater"], v["outcome"]) for v in votes] == [("battle-0", "arena_user_1", "b"), ("battle-1", "arena_user_2", "tie")]
    assert votes[0]["timestamp"] == "2023-11-14T22:13:20.500+00:00" and votes[1]["timestamp"] is None
    # no conversations: nothing to match votes on across raters (agreement statistics skip them)
    assert votes[0]["instruction"] is None and votes[0]["item_id"] is None and votes[0]["response_a"] is None
    run_id = import_battles(store, path)
    from evalkit.human.agreement import human_votes

    assert human_votes(store, [run_id])[0] == []
    battles = battles_from_run(store, run_id)
    assert [(b["winner"], b["judge"], b["conversation_a"]) for b in battles] == [("model_b", "arena_user_1", None), ("tie", "arena_user_2", None)]
    assert battles[0]["tstamp"] == 1700000000.5


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("b.jsonl", '{"model_a": "a", "model_b": "b", "winner": "model_c"}\n', "record 0, field 'winner': is 'model_c'; expected one of model_a, model_b, tie, tie (bothbad)"),
        ("b.jsonl", '{"model_a": "a", "winner": "tie"}\n', "record 0, field 'model_b': missing"),
        ("b.jsonl", '{"model_a": "a", "model_b": "a", "winner": "tie"}\n', "cannot battle itself"),
        ("b.json", '[{"instruction": "q", "output": "x", "generator": "m"}]', "no 'winner' field in any record"),
        ("b.csv", "model_a,model_b,winner,conversation_a\na,b,tie,not json\n", "record 0, field 'conversation_a': is not a JSON list"),
        ("b.csv", "model_a,model_b,winner,tstamp\na,b,tie,yesterday\n", "record 0, field 'tstamp'"),
        ("b.csv", "", "no rows"),
    ],
)
def test_bad_battles(store, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_battles(store, path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert store.list_runs() == []


def test_judge_run_naming_its_reference_in_config(store):
    """The judge records the reference as {"source": name, "hash": ...}; a sample may lack generator_1."""
    with store.start_run("judge-pairwise", "m", {"judge_model": "llama3", "reference": {"source": "ref-model", "hash": "x"}}) as run:
        run.add_sample("i1", {"instruction": "q", "input": "", "output_1": "r", "generator_1": None, "output_2": "o",
                              "generator_2": "m", "preference": 1.25, "status": "ok", "raw_completion": []})
    (battle,) = battles_from_run(store, run.id)
    assert (battle["model_a"], battle["model_b"], battle["winner"], battle["judge"]) == ("ref-model", "m", "model_a", "llama3")
    from evalkit.interop.alpaca_eval import annotation_records

    (annotation,) = annotation_records(store, run.id)
    assert (annotation["generator_1"], annotation["annotator"], annotation["preference"]) == ("ref-model", "llama3", 1.25)
