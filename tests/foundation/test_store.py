"""The results store: incremental, transactional, resumable, versioned."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from evalkit.errors import EvalkitError, StoreVersionError, UnknownRunError
from evalkit.store import SCHEMA_VERSION, Metric, ResultsStore


def test_new_store_has_schema_version_and_no_runs(tmp_path):
    with ResultsStore(tmp_path / "a.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.list_runs() == []
        mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_run_lifecycle_metrics_and_samples(store):
    with store.start_run("judge-score", "m1", {"eval_set": "book-test", "judge_model": "llama3"}) as run:
        run.add_sample("i1", {"response": "a", "score": 50})
        run.add_sample("i2", {"response": "b", "score": 70})
        run.log_metric("score_mean", 60.0, stderr=10.0, n=2)
    record = store.get_run(run.id)
    assert record.status == "done"
    assert record.finished_at is not None
    assert record.metrics == {"score_mean": Metric(60.0, 10.0, 2)}
    assert list(store.samples(run.id)) == [("i1", {"response": "a", "score": 50}), ("i2", {"response": "b", "score": 70})]
    assert record.config == {"eval_set": "book-test", "judge_model": "llama3"}


def test_rewriting_an_item_replaces_it_in_place(store):
    run = store.start_run("generate", "m", {})
    run.add_samples([("a", {"v": 1}), ("b", {"v": 2})])
    run.add_sample("a", {"v": 3})
    assert list(store.samples(run.id)) == [("a", {"v": 3}), ("b", {"v": 2})]
    assert store.sample_count(run.id) == 2


def test_exception_marks_failed_and_ctrl_c_marks_interrupted(store):
    with pytest.raises(RuntimeError):
        with store.start_run("generate", "m", {"x": 1}) as run:
            raise RuntimeError("boom")
    assert store.get_run(run.id).status == "failed"
    with pytest.raises(KeyboardInterrupt):
        with store.start_run("generate", "m", {"x": 2}) as run2:
            raise KeyboardInterrupt
    assert store.get_run(run2.id).status == "interrupted"


def test_same_command_resumes_unfinished_run_but_not_a_done_one(store):
    run = store.start_run("generate", "m", {"data": "f.json"})
    run.add_sample("x", {})
    run.finish("interrupted")
    again = store.start_run("generate", "m", {"data": "f.json"})
    assert again.id == run.id and again.resumed
    assert again.done_items() == {"x"}
    again.finish()
    fresh = store.start_run("generate", "m", {"data": "f.json"})
    assert fresh.id != run.id and not fresh.resumed
    other = store.start_run("generate", "m", {"data": "g.json"})
    assert other.id not in (run.id, fresh.id)


def test_find_run_returns_newest_done_run_with_same_config(store):
    with store.start_run("generate", "m", {"k": 1}) as first:
        pass
    assert store.find_run("generate", "m", {"k": 1}).id == first.id
    assert store.find_run("generate", "m", {"k": 2}) is None


def test_unknown_kind_and_unknown_run_are_clear_errors(store):
    with pytest.raises(EvalkitError, match="unknown run kind"):
        store.start_run("nope", "m", {})
    with pytest.raises(UnknownRunError, match="no run 'missing'"):
        store.get_run("missing")


def test_run_id_prefix_is_accepted_when_unambiguous(store):
    run = store.start_run("mmlu", "m", {})
    assert store.get_run(run.id[:-3]).id == run.id


def test_concurrent_writers_from_threads(tmp_path):
    store = ResultsStore(tmp_path / "c.db")
    runs = [store.start_run("arena", f"m{i}", {}) for i in range(4)]
    errors = []

    def write(run, worker):
        try:
            for j in range(200):
                run.add_sample(f"{worker}-{j}", {"worker": worker, "j": j})
                run.log_metric(f"battles/m{worker}", j)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(runs[i % 4], i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = sum(store.sample_count(r.id) for r in runs)
    assert total == 8 * 200
    for i, run in enumerate(runs):
        items = store.done_items(run.id)
        assert items == {f"{w}-{j}" for w in (i, i + 4) for j in range(200)}
    store.close()


def test_concurrent_writers_from_processes(tmp_path):
    db = tmp_path / "p.db"
    ResultsStore(db).close()
    code = (
        "import sys; from evalkit.store import ResultsStore\n"
        "s = ResultsStore(sys.argv[1]); r = s.start_run('generate', sys.argv[2], {})\n"
        "for i in range(150): r.add_sample(str(i), {'i': i})\n"
        "r.finish()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db), f"m{i}"]) for i in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with ResultsStore(db) as store:
        runs = store.list_runs()
        assert sorted(r.model for r in runs) == ["m0", "m1", "m2"]
        assert all(store.sample_count(r.id) == 150 and r.status == "done" for r in runs)


WORKER = """
import sys, time
from evalkit.store import ResultsStore
store = ResultsStore(sys.argv[1])
run = store.start_run("generate", "killme", {"n": 10000})
done = run.done_items()
print(run.id, len(done), flush=True)
for i in range(10000):
    key = f"item-{i:05d}"
    if key in done:
        continue
    run.add_sample(key, {"i": i})
    if i % 50 == 0:
        print(i, flush=True)
    time.sleep(float(sys.argv[2]))
run.log_metric("n", 10000)
run.finish()
"""


def test_kill_minus_nine_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path):
    db = tmp_path / "k.db"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.Popen([sys.executable, str(script), str(db), "0.001"], stdout=subprocess.PIPE, text=True)
    run_id, already = proc.stdout.readline().split()
    assert already == "0"
    for _ in range(4):  # let it write a few hundred items
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with ResultsStore(db) as store:
        record = store.get_run(run_id)
        assert record.status == "interrupted"  # reported honestly, although the row says running
        written = store.sample_count(run_id)
        assert 150 <= written < 10000
        assert store.done_items(run_id) == {f"item-{i:05d}" for i in range(written)}
    resumed = subprocess.run([sys.executable, str(script), str(db), "0"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    same_id, skipped = resumed.stdout.split("\n")[0].split()
    assert same_id == run_id and int(skipped) == written
    with ResultsStore(db) as store:
        record = store.get_run(run_id)
        assert record.status == "done"
        assert [i for i, _ in store.samples(run_id)] == [f"item-{i:05d}" for i in range(10000)]
        assert record.metrics["n"].value == 10000
        assert len(store.list_runs()) == 1


def test_store_from_newer_evalkit_is_refused_without_change(tmp_path):
    db = tmp_path / "new.db"
    ResultsStore(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(StoreVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade evalkit"):
        ResultsStore(db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION + 1)
    con.close()
    assert len(before) > 0


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(EvalkitError, match="bad.db"):
        ResultsStore(bad)


def test_export_import_round_trip_keeps_everything(tmp_path):
    nasty = 'He said "hi"\n</script><!-- \u2603 ,;\t'
    with ResultsStore(tmp_path / "src.db") as src:
        with src.start_run("judge-pairwise", "m", {"eval_set": "alpaca-eval"}) as run:
            run.add_samples([("a", {"output_2": nasty, "preference": 1.75}), ("b", {"output_2": "", "preference": None})])
            run.log_metrics({"win_rate": Metric(75.0, 12.5, 2), "n_total": 2})
        doc = src.export_run(run.id)
        original = src.get_run(run.id)
    text = json.dumps(doc)
    with ResultsStore(tmp_path / "dst.db") as dst:
        assert dst.import_run(json.loads(text)) == run.id
        copy = dst.get_run(run.id)
        assert copy.as_dict() == original.as_dict()
        assert list(dst.samples(run.id)) == [("a", {"output_2": nasty, "preference": 1.75}), ("b", {"output_2": "", "preference": None})]
        with pytest.raises(EvalkitError, match="already exists"):
            dst.import_run(json.loads(text))
        with pytest.raises(EvalkitError, match="not an evalkit run export"):
            dst.import_run({"runs": []}, source="x.json")


def test_delete_run_removes_metrics_and_samples(store):
    with store.start_run("mmlu", "m", {}) as run:
        run.add_sample("s/0", {"correct": True})
        run.log_metric("acc", 1.0)
    store.delete_run(run.id)
    assert store.list_runs() == []
    assert store._conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 0
    assert store._conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0


def test_cache_round_trip(store):
    assert store.cache_get("k") is None
    store.cache_put("k", {"raw": "text", "score": 3})
    assert store.cache_get("k") == {"raw": "text", "score": 3}


def test_running_run_of_live_process_stays_running(store):
    run = store.start_run("generate", "m", {})
    assert store.get_run(run.id).status == "running"
    time.sleep(0)  # same process, still alive
    assert store.list_runs(status="running")[0].id == run.id


def test_samples_an_importer_checked_are_not_checked_again_but_others_are(tmp_path, monkeypatch):
    from evalkit import schema

    calls = []
    real = schema.validate_sample
    monkeypatch.setattr(schema, "validate_sample", lambda kind, item_id, payload, **kw: calls.append(item_id) or real(kind, item_id, payload, **kw))
    samples = [(f"q{i}", {"response": f"answer {i}", "instruction": "say it"}) for i in range(3)]
    with ResultsStore(tmp_path / "s.db") as store:
        checked = store.check_run("generate", "m", {}, samples, source="file.json")
        with store.start_run("generate", "m", {}) as run:
            run.add_samples(checked)
        assert calls == ["q0", "q1", "q2"]  # once each, by check_run
        with store.start_run("generate", "m2", {}) as run:
            run.add_samples(samples)  # a plain list: checked on write
            assert calls[3:] == ["q0", "q1", "q2"]
            # samples checked for another kind are checked again for this one
            with pytest.raises(schema.SchemaError, match="field 'avg' is NaN"):
                run.add_samples(schema.CheckedSamples("mmlu", [("x", {"response": "r", "avg": float("nan")})]))
