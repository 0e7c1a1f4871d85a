"""Imports never lose or corrupt a number: Arena question ids that collide keep every vote, and a
NaN/Infinity in an imported file is refused with one line (or, in a free-text field the schema
names, stored as null) so that `evalkit report` always renders the store."""

from __future__ import annotations

import json

import pytest

from evalkit.store import ResultsStore


def _battle(question_id, winner="model_a", judge="j1", model_a="m1", model_b="m2"):
    return {"question_id": question_id, "model_a": model_a, "model_b": model_b, "winner": winner, "judge": judge}


def test_arena_question_ids_that_collide_keep_every_vote(store, run_cli, tmp_path):
    path = tmp_path / "battles.jsonl"
    battles = [_battle("q#2", "model_a"), _battle("q", "model_b"), _battle("q", "tie")]
    path.write_text("".join(json.dumps(b) + "\n" for b in battles))
    rc, out, err = run_cli("import", "arena", path)
    assert rc == 0, err
    run = store.get_run(out.strip())
    samples = dict(store.samples(run.id))
    assert len(samples) == 3 == run.metrics["n_votes"].value
    assert sorted(p["outcome"] for p in samples.values()) == ["a", "b", "tie"]
    assert samples["q#2/j1"]["outcome"] == "a"  # the first vote is not overwritten
    assert len({p["pair_id"] for p in samples.values()}) == 3


def test_arena_ids_that_collide_with_generated_names_still_stay_unique(store, run_cli, tmp_path):
    path = tmp_path / "battles.jsonl"
    battles = [_battle("q"), _battle("q#1"), _battle("q"), _battle("q#2"), _battle("q"), _battle("q#2.1")]
    path.write_text("".join(json.dumps(b) + "\n" for b in battles))
    rc, out, err = run_cli("import", "arena", path)
    assert rc == 0, err
    run = store.get_run(out.strip())
    assert store.sample_count(run.id) == 6 == run.metrics["n_votes"].value


def _annotation(i, **extra):
    return {"instruction": f"Say {i}", "output_1": f"base {i}", "generator_1": "base", "output_2": f"model {i}",
            "generator_2": "model", "preference": 2.0, "annotator": "weighted_alpaca_eval_gpt4_turbo", **extra}


def test_alpaca_eval_raw_completion_nan_is_stored_as_null_and_report_renders(store, run_cli, tmp_path):
    path = tmp_path / "annotations.json"
    records = [_annotation(i) for i in range(3)]
    records[1]["raw_completion"] = float("nan")
    path.write_text(json.dumps(records))  # json writes NaN, as pandas' to_json of a missing cell can
    assert "NaN" in path.read_text()
    rc, out, err = run_cli("import", "alpaca-eval", path)
    assert rc == 0, err
    payloads = [p for _, p in store.samples(out.strip())]
    assert [p["raw_completion"] for p in payloads] == [None, None, None]
    rc, _, err = run_cli("report", "--out", tmp_path / "report.html")
    assert rc == 0, err
    assert (tmp_path / "report.html").stat().st_size > 0


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "1e999"])
def test_a_non_finite_preference_is_one_line_and_stores_nothing(store, run_cli, tmp_path, value):
    path = tmp_path / "annotations.json"
    text = json.dumps([_annotation(i) for i in range(3)])
    path.write_text(text.replace('"preference": 2.0', f'"preference": {value}', 1))
    rc, out, err = run_cli("import", "alpaca-eval", path)
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "preference" in err and str(path) in err
    assert store.list_runs() == []


def test_a_nan_in_a_ratings_free_field_of_a_run_export_is_refused(store, run_cli, tmp_path):
    doc = {"format": "evalkit-run", "format_version": 1, "run": {
        "id": "human-1", "kind": "human", "model": "m1 vs m2", "config": {}, "created_at": "2026-01-01T00:00:00",
        "status": "done", "metrics": {"n_votes": {"value": 1, "stderr": None, "n": 1}}},
        "samples": [{"item_id": "p1/r1", "payload": {"pair_id": "p1", "rater": "r1", "outcome": "a", "seconds": float("nan")}}]}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    rc, _, err = run_cli("runs", "import", path)
    # the reader refuses it first (file, record, field); the store would too (tests/foundation/test_schema.py)
    assert rc == 2 and err.count("\n") == 1 and "seconds" in err and "finite" in err
    assert store.list_runs() == []


def test_report_never_crashes_on_a_store_written_before_validation(store, run_cli, tmp_path):
    # a store written by an older evalkit may hold NaN text in a payload: the report still renders
    with store.start_run("human", "m1 vs m2", {}) as run:
        run.add_sample("p1/r1", {"pair_id": "p1", "rater": "r1", "outcome": "a", "model_a": "m1", "model_b": "m2",
                                 "seconds": 2.0})
    store._execute("UPDATE samples SET payload=? WHERE run_id=?", ('{"pair_id": "p1", "rater": "r1", "outcome": "a",'
                   ' "model_a": "m1", "model_b": "m2", "seconds": NaN}', run.id))
    rc, _, err = run_cli("report", "--out", tmp_path / "r.html")
    assert rc == 0, err
    with ResultsStore(store.path, read_only=True) as again:
        assert len(list(again.samples(run.id))) == 1
