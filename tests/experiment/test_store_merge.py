"""`evalkit store merge`: runs, samples, metrics and files come over with their ids; the same
run twice is skipped; a conflicting id refuses the whole merge and changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore
from evalkit.store_merge import merge_stores


def _run(store, model, items, value):
    with store.start_run("mmlu", model, {"eval_set": "mmlu", "model": model}, resume=False) as run:
        run.add_samples((f"q{i}", {"correct": c}) for i, c in enumerate(items))
        run.log_metrics({"acc": value})
        (run.dir / "results.json").write_text('{"acc": %s}' % value)
    return run.id


def _snapshot(store):
    return {r.id: (r.kind, r.model, r.status, {k: m.value for k, m in r.metrics.items()}, list(store.samples(r.id)))
            for r in store.list_runs()}


def test_merge_copies_runs_and_files_and_a_second_merge_adds_nothing(tmp_path):
    with ResultsStore(tmp_path / "a" / "evalkit.db") as a, ResultsStore(tmp_path / "b" / "evalkit.db") as b:
        mine = _run(a, "m1", [True, False], 0.5)
        theirs = [_run(b, "m2", [True, True], 1.0), _run(b, "m3", [False], 0.0)]
        result = merge_stores(a, b.path)
        assert sorted(result.added) == sorted(theirs) and result.already_present == []
        snap_a, snap_b = _snapshot(a), _snapshot(b)
        assert set(snap_a) == {mine, *theirs}
        for run_id in theirs:
            assert snap_a[run_id] == snap_b[run_id]
        assert (tmp_path / "a" / "runs" / theirs[0] / "results.json").read_text() == '{"acc": 1.0}'
        again = merge_stores(a, b.path)
        assert again.added == [] and sorted(again.already_present) == sorted(theirs)
        assert _snapshot(a) == snap_a


def test_a_conflicting_id_refuses_the_merge_and_leaves_the_store_as_it_was(tmp_path):
    with ResultsStore(tmp_path / "a" / "evalkit.db") as a, ResultsStore(tmp_path / "b" / "evalkit.db") as b:
        shared = _run(b, "m2", [True], 1.0)
        _run(b, "m3", [False], 0.0)
        merge_stores(a, b.path)
        b.write_metrics(shared, {"acc": 0.25})  # the same id now holds different numbers
        _run(b, "m4", [True], 1.0)
        before = _snapshot(a)
        with pytest.raises(EvalkitError, match=f"1 run id\\(s\\) exist in both stores with different contents \\({shared}\\); nothing was merged"):
            merge_stores(a, b.path)
        assert _snapshot(a) == before
    proc = subprocess.run([sys.executable, "-m", "evalkit", "--store", str(tmp_path / "a" / "evalkit.db"), "store", "merge",
                           str(tmp_path / "b" / "evalkit.db")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nothing was merged" in proc.stderr and "Traceback" not in proc.stderr


def test_merging_a_missing_file_or_the_store_itself_is_refused(tmp_path):
    with ResultsStore(tmp_path / "evalkit.db") as a:
        with pytest.raises(EvalkitError, match="no such store file"):
            merge_stores(a, tmp_path / "missing.db")
        with pytest.raises(EvalkitError, match="into itself"):
            merge_stores(a, a.path)
    assert not (tmp_path / "missing.db").exists()


def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path):
    other = tmp_path / "notes.db"
    other.write_text("not a database")
    with ResultsStore(tmp_path / "evalkit.db") as a:
        with pytest.raises(EvalkitError, match="not an evalkit results store"):
            merge_stores(a, other)
        assert a.list_runs() == []
    assert other.read_text() == "not a database"
