"""The store's shared content and cached item sets (schema version 2).

Many samples repeat the same long values: every model's MMLU run has the same 14,042 prompts,
questions and answer choices, and every AlpacaEval run the same 805 instructions and reference
outputs. A field listed in :data:`SHARED_FIELDS` whose value is long enough is stored once in
``contents`` under the hash of its JSON text; the sample keeps the key (value ``null``, so the
payload's key order survives) and its ``shared`` column maps the key to the hash. Reading puts
the value back, so a payload reads back exactly as it was written, and the same text read for
many runs is one string object in memory.

``run_item_sets`` caches each run's item count and item-set hash (the identity of the set of
items it scored), so ``runs list`` and ``leaderboard`` read metrics and these, never samples.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# payload fields whose values runs share (texts of the eval set, references, prompts)
SHARED_FIELDS = (
    "prompt", "question", "choices", "instruction", "input", "output", "output_1", "reference", "response", "output_2",
    "response_a", "response_b",  # a rating bundle shows the same responses to every rater
)
# shorter values cost more as a reference (hash + lookup) than they save
MIN_SHARED_LENGTH = 48
HASH_LENGTH = 24  # hex digits of sha256: 96 bits, no collision among any store's texts
CACHE_LIMIT = 500_000  # decoded values kept in memory per open store


def _dumps(value: Any) -> str:
    # as evalkit.store writes JSON: odd objects as text, never NaN/Infinity (validated before)
    return json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)


def _payload_text(payload: Any) -> str:
    """A payload's JSON text, by orjson when it can write it (about five times faster than json
    for 14k MMLU samples); json otherwise: keys that are not strings, odd objects (as text),
    huge integers, lone surrogates. Payloads reach the store validated, so no NaN is written
    (orjson would write null, as evalkit reads a NaN back anyway)."""
    try:
        return orjson.dumps(payload).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return _dumps(payload)


def _shared_text(value: Any) -> str:
    """``_dumps(value)`` of a shareable value (a string or a list of strings), several times
    faster: orjson writes a string exactly as ``json.dumps(ensure_ascii=False)`` does (checked for
    every code point) and refuses only lone surrogates, which go to json. The text is what the
    content hash is taken of, so it must not change."""
    try:
        if isinstance(value, str):
            return orjson.dumps(value).decode("utf-8")
        return "[" + ", ".join([orjson.dumps(v).decode("utf-8") for v in value]) + "]"
    except orjson.JSONEncodeError:
        return _dumps(value)


def loads(text: str) -> Any:
    """JSON text as the json module reads it; orjson first (several times faster on ~300k samples),
    json for what orjson refuses: huge integers, and NaN/Infinity, which stores written before
    values were validated may hold and which are read as null (as evalkit.store reads them)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_constant=lambda _: None)


def _shareable(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) >= MIN_SHARED_LENGTH
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return sum(len(v) for v in value) >= MIN_SHARED_LENGTH
    return False


def _unresolved(rows: Iterable[tuple[str, str, str | None]], refs_of: dict[str, dict[str, str]]) -> Iterator[tuple[str, Any, dict[str, str] | None]]:
    """``(item_id, payload, refs)`` from stored ``(item_id, payload JSON, shared JSON)`` rows, one
    at a time (a reader that keeps only a few fields never holds every payload); ``refs_of``
    caches parsed references by their text (the same item's in every run)."""
    for item_id, payload, shared in rows:
        refs = (refs_of.get(shared) or refs_of.setdefault(shared, loads(shared))) if shared else None
        try:  # loads() inlined: one call fewer per row at 300k rows
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value = loads(payload)
        yield item_id, value, refs


def insert_contents(conn: sqlite3.Connection, contents: list[tuple[str, str]]) -> None:
    """Insert the ``(hash, text)`` pairs :meth:`ContentCache.split` gathered, in the caller's transaction."""
    conn.executemany("INSERT OR IGNORE INTO contents (hash, value) VALUES (?, ?)", contents)


class ContentCache:
    """Splits payloads on write and joins them on read, keeping decoded shared values."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._refs: dict[str, dict[str, str]] = {}  # ``shared`` column text -> parsed (same item, many runs)

    def split(self, payload: Any, written: set[str], pending: list[tuple[str, str]]) -> tuple[str, str | None]:
        """(payload JSON without the shared values, ``{field: hash}`` JSON or None). Appends each
        shared value's ``(hash, text)`` to ``pending`` for the caller to insert
        (:func:`insert_contents`) in its transaction; ``written``: hashes already pending in that
        transaction (never across transactions: a rollback would lose them)."""
        if not isinstance(payload, dict):
            return _payload_text(payload), None
        stored, shared = payload, {}
        for key in SHARED_FIELDS:
            value = payload.get(key)
            if value is None or not _shareable(value):
                continue
            text = _shared_text(value)
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]
            if digest not in written:
                pending.append((digest, text))
                written.add(digest)
            if stored is payload:
                stored = dict(payload)
            stored[key] = None
            shared[key] = digest
        # the references' text is the same as json.dumps(separators=(",", ":")) writes (hex
        # digests under field names): readers cache parsed references by it
        return _payload_text(stored), (orjson.dumps(shared).decode("ascii") if shared else None)

    def _fetch(self, conn: sqlite3.Connection, digests: set[str]) -> None:
        wanted = list(digests)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = conn.execute(
                f"SELECT hash, value FROM contents WHERE hash IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            for digest, text in rows:
                self._values[digest] = loads(text)
        missing = [d for d in wanted if d not in self._values]
        if missing:
            raise sqlite3.DatabaseError(f"shared content {missing[0]} is missing from the store (damaged database)")

    def _ensure(self, conn: sqlite3.Connection, wanted: set[str]) -> None:
        """Every value in ``wanted`` decoded in the cache (fetched once)."""
        needed = {d for d in wanted if d not in self._values}
        if needed:
            if len(self._values) + len(needed) > CACHE_LIMIT:
                # make room, then fetch every value wanted: ones cached before are gone too
                self._values.clear()
                needed = wanted
            self._fetch(conn, needed)

    def resolve(self, conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str | None]]) -> list[tuple[str, Any]]:
        """``(item_id, payload)`` from ``(item_id, payload JSON, shared JSON)`` rows."""
        rows = self.unresolved(rows)
        # the same references (an item's question, choices and prompt) recur in every model's run:
        # check each distinct reference map once
        distinct = {id(refs): refs for _, _, refs in rows if refs}
        self._ensure(conn, {d for refs in distinct.values() for d in refs.values()})
        values = self._values
        for _, value, refs in rows:
            if refs:
                for key, digest in refs.items():
                    shared = values[digest]
                    value[key] = shared[:] if type(shared) is list else shared  # lists: the caller's own copy
        return [(item_id, value) for item_id, value, _ in rows]

    def unresolved(self, rows: Iterable[tuple[str, str, str | None]]) -> list[tuple[str, Any, dict[str, str] | None]]:
        """``(item_id, payload, refs)`` from stored rows without fetching any shared value: a
        shared field is null in ``payload`` and its content hash is ``refs[field]`` (a reader
        that only needs to know which texts are equal, such as the report, never decodes them
        per item)."""
        if len(self._refs) > CACHE_LIMIT:
            self._refs.clear()
        return list(_unresolved(rows, self._refs))

    def values_of(self, conn: sqlite3.Connection, digests: Iterable[str]) -> dict[str, Any]:
        """content hash -> shared value (decoded once; lists are shared, not copied: read only)."""
        wanted = set(digests)
        self._ensure(conn, wanted)
        return {d: self._values[d] for d in wanted}


# -- schema version 2 ---------------------------------------------------------------------------


def share_existing_samples(conn: sqlite3.Connection) -> None:
    """Data step of the migration to version 2: move shared values of existing samples into
    ``contents`` (payloads read back unchanged)."""
    cache = ContentCache()
    written: set[str] = set()
    last = 0
    while True:
        rows = conn.execute(
            "SELECT rowid, payload FROM samples WHERE rowid > ? AND shared IS NULL ORDER BY rowid LIMIT 2000", (last,)
        ).fetchall()
        if not rows:
            break
        contents: list[tuple[str, str]] = []
        for rowid, payload in rows:
            stored, shared = cache.split(json.loads(payload), written, contents)
            if shared is not None:
                conn.execute("UPDATE samples SET payload=?, shared=? WHERE rowid=?", (stored, shared, rowid))
        insert_contents(conn, contents)
        last = rows[-1][0]


MIGRATION_2: list[Any] = [
    "CREATE TABLE IF NOT EXISTS contents (hash TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "ALTER TABLE samples ADD COLUMN shared TEXT",
    """CREATE TABLE IF NOT EXISTS run_item_sets (
        run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        n_items INTEGER NOT NULL,
        items_hash TEXT
    )""",
    share_existing_samples,
]


# -- item sets ----------------------------------------------------------------------------------


def item_set_hash(item_ids: Iterable[str]) -> str | None:
    """Identity of a set of item ids (order-free): the first 10 hex digits of the sha256 of the
    sorted ids as compact JSON."""
    ids = sorted(item_ids)
    if not ids:
        return None
    text = json.dumps(ids, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def forget_item_set(conn: sqlite3.Connection, run_id: str) -> None:
    """A run's items changed: its cached item set is stale."""
    conn.execute("DELETE FROM run_item_sets WHERE run_id=?", (run_id,))


def item_sets(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """run id -> (n_items, items_hash); computed from the item ids (not the payloads) and cached
    for a run that has none cached yet."""
    out: dict[str, tuple[int, str | None]] = {}
    has_cache = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='run_item_sets'").fetchone()
    for start in range(0, len(run_ids) if has_cache else 0, 500):
        chunk = run_ids[start:start + 500]
        rows = conn.execute(
            f"SELECT run_id, n_items, items_hash FROM run_item_sets WHERE run_id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall()
        out.update({run_id: (n, digest) for run_id, n, digest in rows})
    for run_id in run_ids:
        if run_id in out:
            continue
        ids = [r[0] for r in conn.execute("SELECT item_id FROM samples WHERE run_id=?", (run_id,))]
        out[run_id] = (len(ids), item_set_hash(ids))
        try:
            conn.execute(
                "INSERT OR REPLACE INTO run_item_sets (run_id, n_items, items_hash) SELECT ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM runs WHERE id=?)", (run_id, *out[run_id], run_id),
            )
        except sqlite3.OperationalError:
            pass  # a read-only (or not yet migrated) store: computed every time, without reading payloads
    return out


# -- item values (schema version 3) -------------------------------------------------------------
#
# What paired comparisons, significance stars and vote tables need from each sample is a few
# short fields per item. ``run_item_values`` keeps them per run (written when the run finishes,
# dropped when its samples change), so `leaderboard` and `compare` read these and never the
# samples with their texts. Fields compared only for equality across runs (the rendered prompt,
# the reference output) are kept as a digest of their JSON text: equal digests, equal values.

ITEM_VALUE_FIELDS: dict[str, tuple[str, ...]] = {
    "mmlu": ("correct", "category", "prompt", "gold"),
    "judge-score": ("score", "reference"),
    "judge-pairwise": ("preference", "output_1", "generator_1", "generator_2"),
    "human": ("model_a", "model_b", "outcome", "rater"),
}
DIGESTED_FIELDS = frozenset({"prompt", "reference", "output_1"})


def _digest(value: Any) -> str | None:
    if value is None:
        return None
    return "sha256:" + hashlib.sha256(_dumps(value).encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _item_values(fields: tuple[str, ...], payload: Any, refs: dict[str, str]) -> dict[str, Any]:
    """The kind's ``fields`` that the payload has (a missing field stays missing, so
    ``payload.get`` and "missing field" errors behave as on the payload); a field in ``refs`` (a
    stored row's shared text) is its content hash, which is the digest of its text."""
    values: dict[str, Any] = {}
    if isinstance(payload, dict):
        for name in fields:
            if name not in payload:
                continue
            if name in refs:
                values[name] = "sha256:" + refs[name]
            elif name in DIGESTED_FIELDS:
                values[name] = _digest(payload[name])
            else:
                values[name] = payload[name]
    return values


def item_values_of(kind: str, samples: Iterable[tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """``(item_id, values)`` in sample order, from payloads as read (shared texts in place)."""
    fields = ITEM_VALUE_FIELDS.get(kind, ())
    return [(item_id, _item_values(fields, payload, {})) for item_id, payload in samples]


def item_values_of_rows(kind: str, rows: Iterable[tuple[str, str, str | None]]) -> list[tuple[str, dict[str, Any]]]:
    """:func:`item_values_of` straight from stored ``(item_id, payload JSON, shared JSON)`` rows:
    a shared field's digest is its content hash, so no shared text is fetched or hashed again
    (a 14,042-item MMLU run finishes in a fraction of the time of resolving it)."""
    fields = ITEM_VALUE_FIELDS.get(kind, ())
    return [(item_id, _item_values(fields, payload, refs or {})) for item_id, payload, refs in _unresolved(rows, {})]


def _pack(values: list[tuple[str, dict[str, Any]]]) -> bytes:
    return zlib.compress(orjson.dumps(values), 6)


def forget_item_values(conn: sqlite3.Connection, run_id: str) -> None:
    """A run's samples changed: its cached values are stale."""
    conn.execute("DELETE FROM run_item_values WHERE run_id=?", (run_id,))


def cached_item_values(conn: sqlite3.Connection, run_id: str) -> list[tuple[str, dict[str, Any]]] | None:
    try:
        row = conn.execute("SELECT value FROM run_item_values WHERE run_id=?", (run_id,)).fetchone()
    except sqlite3.OperationalError:  # a store older than version 3 opened read-only
        return None
    return None if row is None else [(item_id, values) for item_id, values in orjson.loads(zlib.decompress(row[0]))]


def remember_item_values(conn: sqlite3.Connection, run_id: str, values: list[tuple[str, dict[str, Any]]]) -> None:
    try:
        conn.execute(
            "INSERT OR REPLACE INTO run_item_values (run_id, value) SELECT ?, ? WHERE EXISTS (SELECT 1 FROM runs WHERE id=?)",
            (run_id, _pack(values), run_id),
        )
    except sqlite3.OperationalError:
        pass  # a read-only store: computed from the samples every time


def fill_item_caches(conn: sqlite3.Connection) -> None:
    """Data step of the migration to version 3: every run's item set and item values, computed
    once from its samples, so read-only listings and comparisons never read samples."""
    runs = conn.execute("SELECT id, kind FROM runs").fetchall()
    item_sets(conn, [run_id for run_id, _ in runs])
    for run_id, kind in runs:
        rows = conn.execute("SELECT item_id, payload, shared FROM samples WHERE run_id=? ORDER BY seq", (run_id,)).fetchall()
        remember_item_values(conn, run_id, item_values_of_rows(kind, rows))


MIGRATION_3: list[Any] = [
    """CREATE TABLE IF NOT EXISTS run_item_values (
        run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        value BLOB NOT NULL
    )""",
    fill_item_caches,
]
