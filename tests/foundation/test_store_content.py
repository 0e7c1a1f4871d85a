"""Shared content stored once (schema version 2), its migration, and cached item sets."""

from __future__ import annotations

import json
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.report.provenance import items_hash
from evalkit.store import _MIGRATIONS, ResultsStore, content_hash
from evalkit.store_content import item_set_hash

PROMPT = "The following are multiple choice questions (with answers) about anatomy.\n\nWhat is the \x85 bone?\nA. a\nB. b\nAnswer:"
CHOICES = ["the femur, longest bone", "the tibia", "the stapes, smallest bone", "the \u2028 radius"]


def _mmlu_payload(k: int, model_bias: float) -> dict:
    # keys in an odd order on purpose: reading back must keep it
    return {"subject": "anatomy", "doc_id": k, "question": f"Which bone is meant by question number {k} of this test?",
            "choices": CHOICES, "prompt": PROMPT + str(k), "loglikelihoods": [-1.25 + model_bias, -2.5, -3.0, -0.125],
            "pred": "D", "gold": "A", "correct": False, "short": "x"}


def _contents(store: ResultsStore) -> int:
    return store._conn.execute("SELECT COUNT(*) FROM contents").fetchone()[0]


def test_payloads_read_back_identical_and_shared_values_stored_once(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    written = {}
    for m in range(3):
        with store.start_run("mmlu", f"model-{m}", {"m": m}) as run:
            items = [(f"anatomy/{k}", _mmlu_payload(k, m / 8)) for k in range(20)]
            run.add_samples(items)
            written[run.id] = items
    for run_id, items in written.items():
        back = list(store.samples(run_id))
        assert back == items
        # the exact JSON text too: same key order, same characters
        assert [json.dumps(p, ensure_ascii=False) for _, p in back] == [json.dumps(p, ensure_ascii=False) for _, p in items]
    # 20 questions + 20 prompts + one choices list, once for three runs
    assert _contents(store) == 41
    stored = store._conn.execute("SELECT payload, shared FROM samples LIMIT 1").fetchone()
    assert json.loads(stored[0])["prompt"] is None and set(json.loads(stored[1])) == {"question", "choices", "prompt"}
    # one string object for a text that three runs share; each caller gets its own list
    a, b = (next(iter(store.samples(rid)))[1] for rid in list(written)[:2])
    assert a["prompt"] is b["prompt"] and a["choices"] == b["choices"] and a["choices"] is not b["choices"]


def test_rewriting_a_sample_and_export_import_keep_payloads(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("mmlu", "m", {}) as run:
        run.add_samples([("a/1", _mmlu_payload(1, 0)), ("a/2", _mmlu_payload(2, 0))])
        run.add_sample("a/1", {**_mmlu_payload(1, 0), "prompt": "a different prompt that is long enough to be shared, surely"})
    doc = store.export_run(run.id)
    other = ResultsStore(tmp_path / "t.db")
    other.import_run(doc)
    assert list(other.samples(run.id)) == list(store.samples(run.id))
    assert list(store.samples(run.id))[0][1]["prompt"].startswith("a different prompt")


def _v1_store(path) -> None:
    """A store as schema version 1 (the code before shared content) writes it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO runs (id, kind, model, config, fingerprint, created_at, status) VALUES (?,?,?,?,?,?,?)",
        ("mmlu-1", "mmlu", "m", "{}", "fp", "2026-01-01T00:00:00.000+00:00", "done"),
    )
    for k in range(5):
        conn.execute(
            "INSERT INTO samples (run_id, item_id, seq, payload, created_at) VALUES (?,?,?,?,?)",
            ("mmlu-1", f"anatomy/{k}", k, json.dumps(_mmlu_payload(k, 0), ensure_ascii=False), "2026-01-01"),
        )
    conn.execute("INSERT INTO metrics (run_id, name, value, stderr, n) VALUES ('mmlu-1', 'acc', 0.25, 0.1, 5)")
    conn.close()


def test_migrating_a_version_1_store_moves_shared_values_and_keeps_payloads(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    store = ResultsStore(path)
    assert store.schema_version == 3
    assert list(store.samples("mmlu-1")) == [(f"anatomy/{k}", _mmlu_payload(k, 0)) for k in range(5)]
    assert _contents(store) == 11  # 5 questions, 5 prompts, 1 choices list
    assert store._conn.execute("SELECT COUNT(*) FROM samples WHERE shared IS NULL").fetchone()[0] == 0
    assert store.get_run("mmlu-1").metrics["acc"].value == 0.25
    # new samples in the migrated store share the migrated content
    with store.start_run("mmlu", "m2", {}) as run:
        run.add_samples([(f"anatomy/{k}", _mmlu_payload(k, 1)) for k in range(5)])
    assert _contents(store) == 11
    store.close()
    assert ResultsStore(path).schema_version == 3  # opening again migrates nothing


def test_item_sets_cached_and_forgotten_when_items_change(tmp_path):
    store = ResultsStore(tmp_path / "s.db")
    with store.start_run("mmlu", "m", {}) as run:
        run.add_samples([(f"x/{k}", {"correct": True}) for k in range(4)])
    ids = [f"x/{k}" for k in range(4)]
    assert store.item_sets([run.id]) == {run.id: (4, items_hash(ids))}
    # the same identity as before the cache existed (provenance's comparability keys keep their values)
    assert item_set_hash(ids) == content_hash(sorted(ids), length=10)
    cached = store._conn.execute("SELECT n_items, items_hash FROM run_item_sets WHERE run_id=?", (run.id,)).fetchone()
    assert cached == (4, items_hash(ids))
    store.write_samples(run.id, [("x/9", {"correct": False})])
    assert store._conn.execute("SELECT COUNT(*) FROM run_item_sets WHERE run_id=?", (run.id,)).fetchone()[0] == 0
    assert store.item_sets([run.id]) == {run.id: (5, items_hash([*ids, "x/9"]))}
    store.delete_run(run.id)
    assert store._conn.execute("SELECT COUNT(*) FROM run_item_sets").fetchone()[0] == 0


def test_a_version_1_store_opened_read_only_is_read_unchanged(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    before = path.read_bytes()
    store = ResultsStore(path, read_only=True)
    assert list(store.samples("mmlu-1")) == [(f"anatomy/{k}", _mmlu_payload(k, 0)) for k in range(5)]
    assert store.item_sets(["mmlu-1"]) == {"mmlu-1": (5, items_hash([f"anatomy/{k}" for k in range(5)]))}
    store.close()
    assert path.read_bytes() == before  # not migrated, nothing cached


def test_a_full_value_cache_is_emptied_without_losing_what_a_read_needs(tmp_path, monkeypatch):
    import evalkit.store_content as store_content

    store = ResultsStore(tmp_path / "s.db")
    written = {}
    for m, questions in enumerate((range(0, 10), range(5, 15))):  # the second run shares 5 questions with the first
        with store.start_run("mmlu", f"model-{m}", {"m": m}) as run:
            items = [(f"anatomy/{k}", _mmlu_payload(k, m / 8)) for k in questions]
            run.add_samples(items)
            written[run.id] = items
    store.close()
    store = ResultsStore(tmp_path / "s.db")  # an empty value cache
    first, second = written
    assert list(store.samples(first)) == written[first]  # its 21 values now fill the cache
    monkeypatch.setattr(store_content, "CACHE_LIMIT", 25)  # the second read must empty it first
    assert list(store.samples(second)) == written[second]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.text(), min_size=1, max_size=5)))
def test_shared_text_is_the_json_text_the_content_hash_was_always_taken_of(value):
    # content hashes of existing stores were taken of json.dumps(ensure_ascii=False) text: the
    # faster writer must produce the same text, lone surrogates and control characters included
    from evalkit.store_content import _dumps, _shared_text

    assert _shared_text(value) == _dumps(value)
    assert _shared_text("\ud800 lone surrogate \x00\x1f\u2028") == _dumps("\ud800 lone surrogate \x00\x1f\u2028")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(0, 9), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=5))
def test_payload_text_reads_back_as_the_json_module_wrote_it(payload):
    # the faster writer of stored payloads: the same values back (number keys and huge integers
    # go through json, as before)
    from evalkit.store_content import _dumps, _payload_text, loads

    assert loads(_payload_text(payload)) == loads(_dumps(payload))
