"""The results store: one SQLite database that every evalkit mode writes to.

Tables (schema version :data:`SCHEMA_VERSION`):

* ``runs``: one row per run (``finetune``, ``generate``, ``mmlu``, ``judge-score``,
  ``judge-pairwise``, ``human``, ``arena``) with its model, configuration, versions and status.
* ``metrics``: ``(run_id, name) -> value, stderr, n``. Metric names are documented in the README.
* ``samples``: ``(run_id, item_id) -> JSON payload``: the items behind every number.
* ``cache``: content-keyed cache (judge answers), so a re-run makes no server calls.
* ``meta``: ``schema_version``.
* ``contents`` (version 2): ``hash -> JSON value``: long texts that many samples repeat (MMLU
  prompts, questions and choices; AlpacaEval instructions and reference outputs) stored once;
  a sample's ``shared`` column maps its fields to these hashes (see :mod:`evalkit.store_content`).
* ``run_item_sets`` (version 2): each run's item count and item-set hash, so listings and the
  leaderboard never read samples.

Every sample is committed as it is written (WAL mode), so a run killed with SIGKILL keeps
everything written before it. A run is identified for resumption by a fingerprint of
``(kind, model, config)``: :meth:`ResultsStore.start_run` hands back the unfinished run with
the same fingerprint, whose :meth:`Run.done_items` the caller skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit import store_content
from evalkit.errors import EvalkitError, StoreVersionError, UnknownRunError

SCHEMA_VERSION = 2
RUN_KINDS = ("finetune", "generate", "mmlu", "judge-score", "judge-pairwise", "human", "arena")
STATUSES = ("running", "done", "failed", "interrupted")
DEFAULT_STORE = Path("evalkit-results") / "evalkit.db"
EXPORT_FORMAT = "evalkit-run"
EXPORT_FORMAT_VERSION = 1


def default_store_path() -> Path:
    return Path(os.environ.get("EVALKIT_STORE") or DEFAULT_STORE)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def canonical_json(value: Any) -> str:
    """Stable JSON text: the basis of fingerprints and cache keys."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(value: Any, length: int = 16) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _dumps(value: Any) -> str:
    # default=str keeps Paths and other odd objects from breaking a write; model text is
    # stored verbatim (JSON escaping makes any content safe inside the column).
    return json.dumps(value, ensure_ascii=False, default=str)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


_GIT_COMMIT: list[str | None] = []


def git_commit() -> str | None:
    if not _GIT_COMMIT:
        _GIT_COMMIT.append(_git_commit())
    return _GIT_COMMIT[0]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Metric:
    value: float | None
    stderr: float | None = None
    n: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "stderr": self.stderr, "n": self.n}


@dataclass
class RunRecord:
    """A run as read from the store."""

    id: str
    kind: str
    model: str | None
    model_path: str | None
    model_hash: str | None
    config: dict[str, Any]
    evalkit_version: str | None
    git_commit: str | None
    created_at: str
    finished_at: str | None
    status: str
    fingerprint: str
    metrics: dict[str, Metric] = field(default_factory=dict)

    def as_dict(self, with_metrics: bool = True) -> dict[str, Any]:
        out = {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "model_path": self.model_path,
            "model_hash": self.model_hash,
            "status": self.status,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "evalkit_version": self.evalkit_version,
            "git_commit": self.git_commit,
            "config": self.config,
        }
        if with_metrics:
            out["metrics"] = {k: m.as_dict() for k, m in self.metrics.items()}
        return out


_MIGRATIONS: dict[int, list[str]] = {
    # version -> statements that bring a store from version-1 to version
    1: [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            model TEXT,
            model_path TEXT,
            model_hash TEXT,
            config TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            evalkit_version TEXT,
            git_commit TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            pid INTEGER,
            host TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs (fingerprint)",
        """CREATE TABLE IF NOT EXISTS metrics (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value REAL,
            stderr REAL,
            n INTEGER,
            PRIMARY KEY (run_id, name)
        )""",
        """CREATE TABLE IF NOT EXISTS samples (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            item_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, item_id)
        )""",
        "CREATE INDEX IF NOT EXISTS samples_seq ON samples (run_id, seq)",
        """CREATE TABLE IF NOT EXISTS cache (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ],
    # shared content stored once, cached item sets (evalkit.store_content)
    2: store_content.MIGRATION_2,
}


class ResultsStore:
    """Connection to one results database. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=60000")
        except sqlite3.DatabaseError as exc:
            raise EvalkitError(f"{self.path}: not an evalkit results store ({exc})") from exc
        self._contents = store_content.ContentCache()
        self._migrate()

    # -- schema -----------------------------------------------------------------------------

    def _schema_version(self) -> int:
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._schema_version()
                if version > SCHEMA_VERSION:
                    raise StoreVersionError(
                        f"{self.path}: results store has schema version {version}, but this evalkit "
                        f"understands up to {SCHEMA_VERSION}; upgrade evalkit (the store was not changed)"
                    )
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target]:
                        if callable(statement):  # a data migration step
                            statement(self._conn)
                        else:
                            self._conn.execute(statement)
                    self._conn.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(target),)
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._schema_version()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, tuple(params))

    # -- runs -------------------------------------------------------------------------------

    @staticmethod
    def fingerprint(kind: str, model: str | None, config: dict[str, Any]) -> str:
        return content_hash({"kind": kind, "model": model, "config": config}, length=32)

    def start_run(
        self,
        kind: str,
        model: str | None,
        config: dict[str, Any] | None = None,
        *,
        model_path: str | None = None,
        model_hash: str | None = None,
        resume: bool = True,
    ) -> Run:
        """Open a run for writing.

        With ``resume`` (the default) an unfinished run of the same kind, model and config
        is reopened, so the caller can skip :meth:`Run.done_items`; otherwise a new run starts.
        """
        if kind not in RUN_KINDS:
            raise EvalkitError(f"unknown run kind {kind!r}; expected one of {', '.join(RUN_KINDS)}")
        from evalkit import __version__

        config = json.loads(canonical_json(config or {}))
        fp = self.fingerprint(kind, model, config)
        with self._lock:
            if resume:
                row = self._conn.execute(
                    "SELECT id FROM runs WHERE fingerprint=? AND status!='done' ORDER BY created_at DESC LIMIT 1",
                    (fp,),
                ).fetchone()
                if row:
                    self._conn.execute(
                        "UPDATE runs SET status='running', pid=?, host=?, finished_at=NULL WHERE id=?",
                        (os.getpid(), socket.gethostname(), row[0]),
                    )
                    return Run(self, row[0], kind, model, config, resumed=True)
            run_id = f"{kind}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
            self._conn.execute(
                "INSERT INTO runs (id, kind, model, model_path, model_hash, config, fingerprint, evalkit_version,"
                " git_commit, created_at, status, pid, host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    kind,
                    model,
                    model_path,
                    model_hash,
                    _dumps(config),
                    fp,
                    __version__,
                    git_commit(),
                    utc_now(),
                    "running",
                    os.getpid(),
                    socket.gethostname(),
                ),
            )
        return Run(self, run_id, kind, model, config, resumed=False)

    def _row_to_record(self, row: sqlite3.Row | tuple) -> RunRecord:
        (rid, kind, model, model_path, model_hash, config, fp, version, commit, created, finished, status, pid, host) = row
        if status == "running" and pid and host == socket.gethostname() and not _pid_alive(int(pid)):
            # killed without a chance to say so (kill -9, power loss): report it honestly
            status = "interrupted"
        return RunRecord(
            id=rid,
            kind=kind,
            model=model,
            model_path=model_path,
            model_hash=model_hash,
            config=json.loads(config),
            evalkit_version=version,
            git_commit=commit,
            created_at=created,
            finished_at=finished,
            status=status,
            fingerprint=fp,
        )

    _RUN_COLUMNS = (
        "id, kind, model, model_path, model_hash, config, fingerprint, evalkit_version, git_commit,"
        " created_at, finished_at, status, pid, host"
    )

    def get_run(self, run_id: str, *, with_metrics: bool = True) -> RunRecord:
        row = self._execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            # accept an unambiguous prefix, as git does for commits
            rows = self._execute(
                f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '\\'",
                (run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            ).fetchall()
            if len(rows) != 1:
                raise UnknownRunError(
                    f"no run {run_id!r} in {self.path}" + (" (ambiguous prefix)" if rows else "")
                    + "; see `evalkit runs list`"
                )
            row = rows[0]
        record = self._row_to_record(row)
        if with_metrics:
            record.metrics = self.metrics(record.id)
        return record

    def list_runs(
        self, *, kind: str | None = None, model: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        clauses, params = [], []
        if kind:
            clauses.append("kind=?")
            params.append(kind)
        if model:
            clauses.append("model=?")
            params.append(model)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(f"SELECT {self._RUN_COLUMNS} FROM runs{where} ORDER BY created_at, id", params).fetchall()
        records = [self._row_to_record(r) for r in rows]
        if status:
            records = [r for r in records if r.status == status]
        all_metrics = self._all_metrics([r.id for r in records])
        for r in records:
            r.metrics = all_metrics.get(r.id, {})
        return records

    def find_run(self, kind: str, model: str | None, config: dict[str, Any], *, status: str = "done") -> RunRecord | None:
        """The newest run with this exact kind, model and config (e.g. a generate run to reuse)."""
        fp = self.fingerprint(kind, model, json.loads(canonical_json(config)))
        rows = self._execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE fingerprint=? ORDER BY created_at DESC", (fp,)
        ).fetchall()
        for row in rows:
            record = self._row_to_record(row)
            if record.status == status:
                record.metrics = self.metrics(record.id)
                return record
        return None

    def delete_run(self, run_id: str) -> str:
        run_id = self.get_run(run_id, with_metrics=False).id
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM samples WHERE run_id=?", (run_id,))
                store_content.forget_item_set(self._conn, run_id)
                self._conn.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
                self._conn.execute("DELETE FROM runs WHERE id=?", (run_id,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return run_id

    def set_status(self, run_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        finished = utc_now() if status != "running" else None
        self._execute("UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, finished, run_id))
        if status != "running":
            self.item_sets([run_id])  # cached now, so listings never count items

    def run_dir(self, run_id: str) -> Path:
        """A folder beside the database for a run's files (lm-eval JSON, checkpoints' logs...)."""
        path = self.path.parent / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- metrics and samples ----------------------------------------------------------------

    def metrics(self, run_id: str) -> dict[str, Metric]:
        rows = self._execute(
            "SELECT name, value, stderr, n FROM metrics WHERE run_id=? ORDER BY name", (run_id,)
        ).fetchall()
        return {name: Metric(value, stderr, n) for name, value, stderr, n in rows}

    def _all_metrics(self, run_ids: list[str]) -> dict[str, dict[str, Metric]]:
        out: dict[str, dict[str, Metric]] = {}
        if not run_ids:
            return out
        rows = self._execute("SELECT run_id, name, value, stderr, n FROM metrics ORDER BY run_id, name").fetchall()
        wanted = set(run_ids)
        for run_id, name, value, stderr, n in rows:
            if run_id in wanted:
                out.setdefault(run_id, {})[name] = Metric(value, stderr, n)
        return out

    def samples(self, run_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(item_id, payload) in the order they were first written."""
        rows = self._execute(
            "SELECT item_id, payload, shared FROM samples WHERE run_id=? ORDER BY seq", (run_id,)
        ).fetchall()
        with self._lock:
            yield from self._contents.resolve(self._conn, rows)

    def sample_count(self, run_id: str) -> int:
        return self._execute("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)).fetchone()[0]

    def done_items(self, run_id: str) -> set[str]:
        rows = self._execute("SELECT item_id FROM samples WHERE run_id=?", (run_id,)).fetchall()
        return {r[0] for r in rows}

    def item_sets(self, run_ids: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """run id -> (number of items, item-set hash), from the cache (filled on first use)."""
        with self._lock:
            return store_content.item_sets(self._conn, list(run_ids))

    def write_samples(self, run_id: str, items: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Insert or replace samples in one transaction; returns how many were written."""
        now = utc_now()
        count = 0
        written: set[str] = set()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for item_id, payload in items:
                    stored, shared = self._contents.split(self._conn, payload, written)
                    # keep the original position of an item that is rewritten (no duplicates)
                    self._conn.execute(
                        "INSERT INTO samples (run_id, item_id, seq, payload, shared, created_at) VALUES (?, ?,"
                        " (SELECT COALESCE(MAX(seq), -1) + 1 FROM samples WHERE run_id=?), ?, ?, ?)"
                        " ON CONFLICT(run_id, item_id) DO UPDATE SET payload=excluded.payload,"
                        " shared=excluded.shared, created_at=excluded.created_at",
                        (run_id, str(item_id), run_id, stored, shared, now),
                    )
                    count += 1
                if count:
                    store_content.forget_item_set(self._conn, run_id)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return count

    def write_metrics(self, run_id: str, metrics: dict[str, Metric | float | int | None]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for name, m in metrics.items():
                    if not isinstance(m, Metric):
                        m = Metric(None if m is None else float(m))
                    self._conn.execute(
                        "INSERT OR REPLACE INTO metrics (run_id, name, value, stderr, n) VALUES (?,?,?,?,?)",
                        (run_id, name, m.value, m.stderr, m.n),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # -- cache ------------------------------------------------------------------------------

    def cache_get(self, key: str) -> Any | None:
        row = self._execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def cache_put(self, key: str, value: Any) -> None:
        self._execute("INSERT OR REPLACE INTO cache (key, value, created_at) VALUES (?,?,?)", (key, _dumps(value), utc_now()))

    # -- export / import --------------------------------------------------------------------

    def export_run(self, run_id: str) -> dict[str, Any]:
        """A run as one JSON-able document (``format: evalkit-run``) that :meth:`import_run` reads back."""
        record = self.get_run(run_id)
        doc = {"format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION, "schema_version": SCHEMA_VERSION}
        doc["run"] = record.as_dict()
        doc["samples"] = [{"item_id": i, "payload": p} for i, p in self.samples(record.id)]
        return doc

    def import_run(self, doc: dict[str, Any], *, source: str = "<document>") -> str:
        """Store a document written by :meth:`export_run`; the run keeps its id."""
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
            raise EvalkitError(f"{source}: not an evalkit run export (expected \"format\": \"{EXPORT_FORMAT}\")")
        if int(doc.get("format_version", 0)) > EXPORT_FORMAT_VERSION:
            raise StoreVersionError(f"{source}: run export format version {doc['format_version']} is newer than this evalkit")
        run = doc["run"]
        for key in ("id", "kind", "config", "created_at", "status"):
            if key not in run:
                raise EvalkitError(f"{source}: field 'run.{key}' is missing")
        with self._lock:
            if self._conn.execute("SELECT 1 FROM runs WHERE id=?", (run["id"],)).fetchone():
                raise EvalkitError(f"{source}: run {run['id']} already exists in {self.path}")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO runs (id, kind, model, model_path, model_hash, config, fingerprint, evalkit_version,"
                    " git_commit, created_at, finished_at, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        run["id"],
                        run["kind"],
                        run.get("model"),
                        run.get("model_path"),
                        run.get("model_hash"),
                        _dumps(run["config"]),
                        self.fingerprint(run["kind"], run.get("model"), run["config"]),
                        run.get("evalkit_version"),
                        run.get("git_commit"),
                        run["created_at"],
                        run.get("finished_at"),
                        run["status"] if run["status"] != "running" else "interrupted",
                    ),
                )
                for name, m in (run.get("metrics") or {}).items():
                    self._conn.execute(
                        "INSERT INTO metrics (run_id, name, value, stderr, n) VALUES (?,?,?,?,?)",
                        (run["id"], name, m.get("value"), m.get("stderr"), m.get("n")),
                    )
                now = utc_now()
                written: set[str] = set()
                for seq, sample in enumerate(doc.get("samples") or []):
                    stored, shared = self._contents.split(self._conn, sample["payload"], written)
                    self._conn.execute(
                        "INSERT INTO samples (run_id, item_id, seq, payload, shared, created_at) VALUES (?,?,?,?,?,?)",
                        (run["id"], str(sample["item_id"]), seq, stored, shared, now),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return run["id"]


class Run:
    """Write handle for one run. Use as a context manager so the status is always set:

    ``done`` on success, ``interrupted`` on Ctrl-C, ``failed`` on an exception. A process
    killed with SIGKILL leaves ``running`` in the row, which readers report as ``interrupted``.
    """

    def __init__(self, store: ResultsStore, run_id: str, kind: str, model: str | None, config: dict[str, Any], *, resumed: bool):
        self.store = store
        self.id = run_id
        self.kind = kind
        self.model = model
        self.config = config
        self.resumed = resumed
        self._finished = False

    def done_items(self) -> set[str]:
        return self.store.done_items(self.id)

    def samples(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.store.samples(self.id)

    def add_sample(self, item_id: str, payload: dict[str, Any]) -> None:
        self.store.write_samples(self.id, [(item_id, payload)])

    def add_samples(self, items: Iterable[tuple[str, dict[str, Any]]]) -> int:
        return self.store.write_samples(self.id, items)

    def log_metric(self, name: str, value: float | None, stderr: float | None = None, n: int | None = None) -> None:
        self.store.write_metrics(self.id, {name: Metric(value, stderr, n)})

    def log_metrics(self, metrics: dict[str, Metric | float | int | None]) -> None:
        self.store.write_metrics(self.id, metrics)

    @property
    def dir(self) -> Path:
        return self.store.run_dir(self.id)

    def finish(self, status: str = "done") -> None:
        self.store.set_status(self.id, status)
        self._finished = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._finished:
            return
        if exc_type is None:
            self.finish("done")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("failed")
