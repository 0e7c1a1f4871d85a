"""A command that only reads results never creates a store; where none is, it names the stores
it can see nearby (and the commands that make one)."""

from __future__ import annotations

import sqlite3

import pytest

from evalkit.cli import main
from evalkit.store import Metric, ResultsStore
from evalkit.store_location import nearby_stores


def _store_with_runs(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    with ResultsStore(path) as store:
        for i in range(n):
            with store.start_run("generate", f"model-{i}", {"eval_set": "x"}) as run:
                run.log_metrics({"n": Metric(1.0, None, 1)})


READ_ONLY = [["runs", "list"], ["leaderboard"], ["report"], ["compare", "a", "b"], ["runs", "show", "x"],
             ["pairs", "agreement"], ["arena"], ["runs", "delete", "x"]]


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: " ".join(a))
def test_read_only_command_without_a_store_creates_nothing_and_says_so(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVALKIT_STORE", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "evalkit: error: no results store at evalkit-results/evalkit.db (the default store; nothing was created); "
        "no evalkit store in this folder either; run `evalkit demo`, or a command that stores results "
        "(finetune, generate, mmlu, judge, import), first, or pass --store PATH"
    )
    assert list(tmp_path.iterdir()) == []


def test_names_the_stores_nearby_most_runs_first(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVALKIT_STORE", raising=False)
    _store_with_runs(tmp_path / "evalkit-demo" / "evalkit.db", 3)
    _store_with_runs(tmp_path / "old" / "results.db", 1)
    (tmp_path / "notes.db").write_text("not sqlite")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    _store_with_runs(tmp_path / ".venv" / "hidden.db", 1)  # not searched
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["runs", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "stores in this folder: evalkit-demo/evalkit.db (3 runs), old/results.db (1 run); read one with "
        "--store evalkit-demo/evalkit.db or `export EVALKIT_STORE=evalkit-demo/evalkit.db`"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created, not even -wal files
    assert nearby_stores(tmp_path) == [(tmp_path.joinpath("evalkit-demo/evalkit.db").relative_to(tmp_path), 3),
                                       (tmp_path.joinpath("old/results.db").relative_to(tmp_path), 1)]


def test_missing_store_named_by_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path / "gone.db"))
    assert main(["leaderboard"]) == 2
    assert f"no results store at {tmp_path / 'gone.db'} ($EVALKIT_STORE; nothing was created)" in capsys.readouterr().err
    assert not (tmp_path / "gone.db").exists()


def test_existing_store_is_read(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVALKIT_STORE", raising=False)
    _store_with_runs(tmp_path / "evalkit-results" / "evalkit.db", 2)
    assert main(["runs", "list", "--format", "json"]) == 0
    assert [r["model"] for r in __import__("json").loads(capsys.readouterr().out)] == ["model-0", "model-1"]
