"""Cached per-run item values (schema version 3): what comparisons and significance stars read
instead of the samples, filled when a run finishes, dropped when its samples change, and filled
for every run when an older store is migrated."""

from __future__ import annotations

import json
import sqlite3

import pytest

from evalkit.compare import compare_models, items_differing
from evalkit.report import build_leaderboard
from evalkit.store import ResultsStore
from evalkit.store_content import item_values_of
from tests.compare import builders
from tests.foundation.test_store_content import _mmlu_payload, _v1_store

MMLU_A = [1] + [0] * 9 + [1] * 6 + [0] * 4
MMLU_B = [0] + [1] * 9 + [1] * 6 + [0] * 4


def _every_kind(store: ResultsStore) -> None:
    questions = builders.mmlu_questions(20)
    records = builders.instructions(10)
    builders.mmlu_run(store, "A", questions, MMLU_A)
    builders.mmlu_run(store, "B", questions, MMLU_B)
    builders.judge_score_run(store, "A", records, [50, 60, 70, 80, 40, 55, 65, 70, 30, 20])
    builders.judge_score_run(store, "B", records, [90, 95, 99, 99, 90, 92, 97, 98, 80, 70])
    builders.pairwise_run(store, "A", records, [1, 1, 1.5, 2, 1, 1, 1.2, 1, 1, 1])
    builders.pairwise_run(store, "B", records, [2, 2, 1.5, 2, 2, 1.8, 1.2, 2, 1, 2])
    builders.human_run(store, [("A", "B", "b")] * 12 + [("A", "B", "a")] * 2 + [("B", "A", "tie")] * 3)


class _SampleReads:
    """An sqlite authorizer that records every read of the samples and contents tables."""

    def __init__(self) -> None:
        self.tables: set[str] = set()

    def __call__(self, action, table, column, database, trigger):
        if action == sqlite3.SQLITE_READ and table in ("samples", "contents"):
            self.tables.add(table)
        return sqlite3.SQLITE_OK


def _watch(store: ResultsStore) -> _SampleReads:
    reads = _SampleReads()
    store._conn.set_authorizer(reads)
    return reads


def test_leaderboard_stars_and_compare_read_no_sample(tmp_path):
    path = tmp_path / "s.db"
    with ResultsStore(path) as store:
        _every_kind(store)
    store = ResultsStore(path, read_only=True)
    reads = _watch(store)
    board = build_leaderboard(store)
    rows = compare_models(store, "A", "B", bootstrap=200, seed=3)
    assert reads.tables == set()
    # the stars did come from compare's paired tests (B leads both columns, significantly)
    assert board.best["mmlu_acc"] == {"B"} and board.best["judge_score"] == {"B"}
    assert {r["mode"] for r in rows} == {"mmlu", "judge-score", "judge-pairwise", "human"}
    # the watcher does see sample reads: the texts of differing items come from the samples
    items_differing(store, "A", "B", mode="mmlu", limit=3)
    assert "samples" in reads.tables


def test_results_are_the_same_from_the_cache_and_from_the_samples(tmp_path):
    path = tmp_path / "s.db"
    with ResultsStore(path) as store:
        _every_kind(store)
        cached = compare_models(store, "A", "B", bootstrap=500, seed=7)
        cached_items = items_differing(store, "A", "B", mode="judge-pairwise", limit=None)
        cached_board = build_leaderboard(store).rows
        assert store._conn.execute("SELECT COUNT(*) FROM run_item_values").fetchone()[0] == 7
        store._conn.execute("DELETE FROM run_item_values")
    store = ResultsStore(path, read_only=True)  # nothing cached, nothing written: computed from the samples
    reads = _watch(store)
    assert compare_models(store, "A", "B", bootstrap=500, seed=7) == cached
    assert items_differing(store, "A", "B", mode="judge-pairwise", limit=None) == cached_items
    assert build_leaderboard(store).rows == cached_board
    assert "samples" in reads.tables


def test_values_hold_the_compared_fields_with_texts_as_digests(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("mmlu", "m", {}) as run:
        run.add_samples([("anatomy/1", _mmlu_payload(1, 0)), ("anatomy/2", {"correct": True})])
    (first, values), (second, bare) = store.item_values(run.id)
    assert (first, second) == ("anatomy/1", "anatomy/2")
    assert values["correct"] is False and values["gold"] == "A" and "category" not in values  # missing stays missing
    assert values["prompt"].startswith("sha256:") and values["prompt"] != _mmlu_payload(1, 0)["prompt"]
    assert values["prompt"] != item_values_of("mmlu", [("x", _mmlu_payload(2, 0))])[0][1]["prompt"]
    assert bare == {"correct": True}


def test_cache_filled_on_finish_dropped_on_write_and_delete(tmp_path):
    store = ResultsStore(tmp_path / "s.db")

    def cached(run_id):
        return store._conn.execute("SELECT COUNT(*) FROM run_item_values WHERE run_id=?", (run_id,)).fetchone()[0]

    run = store.start_run("mmlu", "m", {})
    run.add_samples([(f"x/{k}", {"correct": k % 2 == 0}) for k in range(4)])
    assert cached(run.id) == 0
    run.finish()
    assert cached(run.id) == 1
    store.write_samples(run.id, [("x/0", {"correct": False})])
    assert cached(run.id) == 0
    assert [v["correct"] for _, v in store.item_values(run.id)] == [False, False, True, False]  # recomputed
    assert cached(run.id) == 1
    store.delete_run(run.id)
    assert store._conn.execute("SELECT COUNT(*) FROM run_item_values").fetchone()[0] == 0


def test_running_run_is_not_cached_by_a_reader(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    run = store.start_run("mmlu", "m", {})
    run.add_samples([("x/1", {"correct": True})])
    assert store.item_values(run.id) == [("x/1", {"correct": True})]
    assert store._conn.execute("SELECT COUNT(*) FROM run_item_values").fetchone()[0] == 0


def test_imported_run_document_is_cached(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("mmlu", "m", {}) as run:
        run.add_samples([("anatomy/1", _mmlu_payload(1, 0))])
    other = ResultsStore(tmp_path / "t.db")
    other.import_run(json.loads(json.dumps(store.export_run(run.id))))
    reads = _watch(other)
    assert other.item_values(run.id) == store.item_values(run.id)
    assert other.item_sets([run.id]) == store.item_sets([run.id])
    assert reads.tables == set()


def test_migrating_an_older_store_fills_item_sets_and_values(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    ResultsStore(path).close()  # migrates (version 1 -> 3)
    store = ResultsStore(path, read_only=True)
    assert store.schema_version == 3
    reads = _watch(store)
    values = store.item_values("mmlu-1")
    assert [item for item, _ in values] == [f"anatomy/{k}" for k in range(5)]
    assert all(v["correct"] is False and v["gold"] == "A" for _, v in values)
    assert store.item_sets(["mmlu-1"])["mmlu-1"][0] == 5
    assert reads.tables == set()


@pytest.mark.parametrize("kind", ["human"])
def test_vote_tables_read_the_cached_fields(tmp_path, kind):
    from evalkit.human.arena import battles_from_store

    path = tmp_path / "s.db"
    with ResultsStore(path) as store:
        run_id = builders.human_run(store, [("A", "B", "b"), ("B", "A", "both_bad")])
    store = ResultsStore(path, read_only=True)
    reads = _watch(store)
    battles = battles_from_store(store)
    assert battles[["model_a", "model_b", "winner", "rater"]].values.tolist() == [
        ["A", "B", "model_b", "r1"], ["B", "A", "tie (bothbad)", "r1"]]
    assert set(battles["run_id"]) == {run_id} and reads.tables == set()


def test_values_from_stored_rows_equal_values_from_the_resolved_payloads(tmp_path):
    # finishing a run reads its stored rows, not the resolved samples: a shared text's digest is
    # its content hash; a short (unshared) one and a null are hashed/kept as item_values_of does
    store = ResultsStore(tmp_path / "s.db")
    _every_kind(store)
    with store.start_run("judge-pairwise", "C", {}) as run:
        run.add_samples([("i/1", {"output_1": "short", "preference": 1.0}), ("i/2", {"output_1": None, "preference": 2.0}),
                         ("i/3", {"output_1": "a reference long enough to be stored once as shared content" * 2})])
    for record in store.list_runs():
        assert store.item_values(record.id) == item_values_of(record.kind, store.samples(record.id)), record.kind
    values = dict(store.item_values(run.id))
    assert values["i/1"]["output_1"].startswith("sha256:") and values["i/2"]["output_1"] is None


def test_samples_of_items_are_those_payloads_as_written(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("mmlu", "m", {}) as run:
        run.add_samples([(f"anatomy/{k}", _mmlu_payload(k, k % 4)) for k in range(700)])  # over one IN (...) chunk
    everything = dict(store.samples(run.id))
    wanted = ["anatomy/699", "anatomy/3", "missing/1", "anatomy/3"] + [f"anatomy/{k}" for k in range(100, 650)]
    got = store.samples_of_items(run.id, wanted)
    assert got == {item: everything[item] for item in wanted if item in everything}
    assert got["anatomy/3"]["prompt"] == _mmlu_payload(3, 3)["prompt"]  # shared text put back
