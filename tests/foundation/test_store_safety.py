"""The store at its doors: read-only opening, foreign and broken files, validated imports,
exports that stay in their folder, and deleting a run that is still being written."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from evalkit.cli import main
from evalkit.store import Metric, ResultsStore


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(capsys, *args):
    rc = main([*map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _one_line_error(rc, err):
    return rc == 2 and err.count("\n") == 1 and err.startswith("evalkit: error: ") and "Traceback" not in err


@pytest.fixture
def foreign_db(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.execute("INSERT INTO people VALUES ('ada')")
    conn.commit()
    conn.close()
    return path


READ_ONLY_COMMANDS = [
    ("runs", "list"),
    ("runs", "show", "x"),
    ("runs", "export", "x"),
    ("leaderboard",),
    ("compare", "a", "b"),
    ("pairs", "agreement"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: " ".join(c))
def test_read_only_commands_refuse_a_foreign_sqlite_file_and_leave_it_byte_identical(capsys, foreign_db, command):
    before = _sha(foreign_db)
    rc, out, err = _cli(capsys, "--store", foreign_db, *command)
    assert _one_line_error(rc, err) and "not an evalkit results store" in err
    assert _sha(foreign_db) == before
    assert sorted(p.name for p in foreign_db.parent.iterdir()) == ["other.db"]  # no -wal, no -shm


@pytest.mark.parametrize("command", [("runs", "list"), ("leaderboard",), ("runs", "delete", "x")], ids=" ".join)
def test_a_foreign_database_in_wal_mode_gets_no_wal_or_shm_file(capsys, tmp_path, command):
    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = _sha(path)
    rc, _, err = _cli(capsys, "--store", path, *command)
    assert _one_line_error(rc, err) and "not an evalkit results store" in err
    assert _sha(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["wal.db"]


def test_a_writing_command_refuses_a_foreign_sqlite_file_too(capsys, foreign_db, tmp_path):
    before = _sha(foreign_db)
    export = tmp_path / "run.json"
    export.write_text("{}")
    rc, _, err = _cli(capsys, "--store", foreign_db, "runs", "import", export)
    assert _one_line_error(rc, err) and "not an evalkit results store" in err
    assert _sha(foreign_db) == before and not (tmp_path / "other.db-wal").exists()


def test_read_only_command_does_not_create_a_missing_store(capsys, tmp_path):
    rc, _, err = _cli(capsys, "--store", tmp_path / "sub" / "new.db", "leaderboard")
    assert _one_line_error(rc, err) and "no results store at" in err
    assert list(tmp_path.iterdir()) == []


def test_read_only_open_of_an_evalkit_store_changes_nothing(tmp_path):
    path = tmp_path / "s.db"
    with ResultsStore(path) as store:
        with store.start_run("mmlu", "m", {}) as run:
            run.log_metric("acc", 0.5, 0.1, 20)
    before = _sha(path)
    with ResultsStore(path, read_only=True) as store:
        assert [r.id for r in store.list_runs()] == [run.id]
        with pytest.raises(Exception, match="read-only"):
            store.start_run("mmlu", "m2", {})
    assert _sha(path) == before


def test_corrupt_store_is_one_line(capsys, tmp_path):
    path = tmp_path / "s.db"
    with ResultsStore(path) as store:
        store.start_run("mmlu", "m", {}).finish()
    data = bytearray(path.read_bytes())
    data[100:4000] = b"\xff" * 3900
    path.write_bytes(bytes(data))
    for command in (("runs", "list"), ("runs", "import", tmp_path / "x.json")):
        rc, _, err = _cli(capsys, "--store", path, *command)
        assert _one_line_error(rc, err), err


def test_text_file_as_store_is_one_line_and_unchanged(capsys, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n")
    for command in (("runs", "list"), ("runs", "delete", "x")):
        rc, _, err = _cli(capsys, "--store", path, *command)
        assert _one_line_error(rc, err) and "not an evalkit results store" in err
    assert path.read_text() == "not a database\n"


def test_schema_version_that_is_not_an_integer_is_one_line(capsys, tmp_path):
    path = tmp_path / "s.db"
    ResultsStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value='one' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    for command in (("runs", "list"), ("runs", "delete", "x")):
        rc, _, err = _cli(capsys, "--store", path, *command)
        assert _one_line_error(rc, err) and "schema_version 'one' is not an integer" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_file_is_one_line_for_a_writing_command(capsys, tmp_path):
    path = tmp_path / "s.db"
    ResultsStore(path).close()
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        rc, _, err = _cli(capsys, "--store", path, "runs", "delete", "x")
        assert _one_line_error(rc, err)
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


# -- runs import ------------------------------------------------------------------------------


def _export(tmp_path):
    path = tmp_path / "src.db"
    with ResultsStore(path) as store:
        with store.start_run("judge-score", "m", {"eval_set": "e"}) as run:
            run.add_sample("i1", {"score": 50, "status": "ok"})
            run.log_metric("score_mean", 50.0, 1.0, 1)
        return store.export_run(run.id)


def _mutate(doc, change):
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


BAD_IMPORTS = {
    "config is a list": (lambda d: d["run"].__setitem__("config", [1]), "config' must be a JSON object"),
    "config is a string": (lambda d: d["run"].__setitem__("config", "x"), "config' must be a JSON object"),
    "payload is a string": (lambda d: d["samples"][0].__setitem__("payload", "hello"), "payload must be a JSON object"),
    "kind bogus": (lambda d: d["run"].__setitem__("kind", "bogus"), "unknown run kind 'bogus'"),
    "status weird": (lambda d: d["run"].__setitem__("status", "weird"), "unknown status 'weird'"),
    "run id escapes": (lambda d: d["run"].__setitem__("id", "../../evil"), "run id '../../evil'"),
    "run id with NUL": (lambda d: d["run"].__setitem__("id", "a\x00b"), "run id"),
    # refused by the file reader already (evalkit.records), naming the field in the document
    "NaN metric": (lambda d: d["run"]["metrics"]["score_mean"].__setitem__("value", float("nan")), "field 'run.metrics.score_mean.value': is nan"),
    "NaN in payload": (lambda d: d["samples"][0]["payload"].__setitem__("score", float("inf")), "field 'samples[0].payload.score': is inf"),
    "score out of range": (lambda d: d["samples"][0]["payload"].__setitem__("score", 500), "field 'score'"),
    "duplicate item": (lambda d: d["samples"].append(copy.deepcopy(d["samples"][0])), "appears twice"),
    "metrics not an object": (lambda d: d["run"].__setitem__("metrics", [1]), "run.metrics' must be a JSON object"),
    "format_version text": (lambda d: d.__setitem__("format_version", "1"), "format_version' must be an integer"),
    "model with dot-dot": (lambda d: d["run"].__setitem__("model", "../m"), "run.model"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_runs_import_refuses_bad_documents_and_leaves_the_store_unchanged(capsys, tmp_path, case):
    change, message = BAD_IMPORTS[case]
    doc = _mutate(_export(tmp_path), change)
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(doc))
    target = tmp_path / "t.db"
    ResultsStore(target).close()
    before = _sha(target)
    rc, _, err = _cli(capsys, "--store", target, "runs", "import", file)
    assert _one_line_error(rc, err) and message in err, err
    assert _sha(target) == before
    with ResultsStore(target, read_only=True) as store:
        assert store.list_runs() == []


def test_runs_import_of_a_good_document_round_trips(capsys, tmp_path):
    doc = _export(tmp_path)
    file = tmp_path / "ok.json"
    file.write_text(json.dumps(doc))
    rc, out, _ = _cli(capsys, "--store", tmp_path / "t.db", "runs", "import", file)
    assert rc == 0 and out.strip() == doc["run"]["id"]
    with ResultsStore(tmp_path / "t.db") as store:
        assert store.export_run(doc["run"]["id"])["samples"] == doc["samples"]


def test_export_out_dir_never_writes_outside_the_folder(capsys, tmp_path):
    # a store written before ids were checked may hold an unsafe id: export still stays inside
    path = tmp_path / "s.db"
    with ResultsStore(path) as store:
        run = store.start_run("mmlu", "m", {})
        run.finish()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET id='../../escaped' WHERE id=?", (run.id,))
    conn.commit()
    conn.close()
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    rc, _, err = _cli(capsys, "--store", path, "runs", "export", "../../escaped", "--out", out)
    assert _one_line_error(rc, err)
    assert not (tmp_path / "escaped.json").exists() and list(out.iterdir()) == []


# -- deleting a run that is being written ---------------------------------------------------------


def test_delete_of_a_run_a_live_process_is_writing_needs_force(capsys, tmp_path):
    path = tmp_path / "s.db"
    ResultsStore(path).close()
    code = (
        "import sys, time; from evalkit.store import ResultsStore\n"
        "s = ResultsStore(sys.argv[1]); r = s.start_run('generate', 'm', {})\n"
        "print(r.id, flush=True)\n"
        "time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        run_id = writer.stdout.readline().strip()
        rc, _, err = _cli(capsys, "--store", path, "runs", "delete", run_id)
        assert _one_line_error(rc, err) and f"process {writer.pid}" in err and "--force" in err
        with ResultsStore(path, read_only=True) as store:
            assert store.get_run(run_id).status == "running"
        rc, _, err = _cli(capsys, "--store", path, "runs", "delete", run_id, "--force")
        assert rc == 0 and "deleted" in err
    finally:
        writer.kill()
        writer.wait()
    # once the writer is gone, deleting needs no force
    with ResultsStore(path) as store:
        run = store.start_run("generate", "m2", {})
        run.finish("interrupted")
    rc, _, err = _cli(capsys, "--store", path, "runs", "delete", run.id)
    assert rc == 0


def test_metrics_with_numpy_types_are_stored_as_plain_numbers(tmp_path):
    import numpy as np

    with ResultsStore(tmp_path / "s.db") as store:
        with store.start_run("mmlu", "m", {}) as run:
            run.log_metrics({"acc": Metric(np.float32(0.5), np.float64(0.1), np.int64(20))})
        m = store.metrics(run.id)["acc"]
        assert (m.value, round(m.stderr, 6), m.n) == (0.5, 0.1, 20)
        time.sleep(0)


def _create_stores_in_step(folder: str, rounds: int, barrier, errors) -> None:
    for k in range(rounds):
        barrier.wait()
        try:
            ResultsStore(os.path.join(folder, f"new-{k}.db")).close()
        except Exception as exc:  # noqa: BLE001  (any failure is the finding)
            errors.put(f"round {k}: {exc}")


def test_two_processes_creating_the_same_new_store_at_once_both_succeed(tmp_path):
    # both ranks of a torchrun fine-tune open a new --store together: switching a fresh file to
    # WAL is a lock SQLite reports at once (without the busy timeout); before the retry, about
    # 4 in 10 such pairs failed with "database is locked"
    import multiprocessing

    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_create_stores_in_step, args=(str(tmp_path), 15, barrier, errors)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and all(w.exitcode == 0 for w in workers)
    with ResultsStore(tmp_path / "new-0.db") as store:
        assert store.schema_version >= 3 and store.list_runs() == []
