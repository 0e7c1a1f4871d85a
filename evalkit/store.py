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

import json
import math
import os
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit import schema, store_content
from evalkit.errors import EvalkitError, StoreVersionError, UnknownRunError
from evalkit.hashing import canonical_json, content_hash  # noqa: F401  (re-exported: store.content_hash)
from evalkit.schema import RUN_KINDS, STATUSES  # noqa: F401  (re-exported for the CLI)

SCHEMA_VERSION = 3
DEFAULT_STORE = Path("evalkit-results") / "evalkit.db"
EXPORT_FORMAT = "evalkit-run"
EXPORT_FORMAT_VERSION = 1


def default_store_path() -> Path:
    return Path(os.environ.get("EVALKIT_STORE") or DEFAULT_STORE)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    # default=str keeps Paths and other odd objects from breaking a write; model text is
    # stored verbatim (JSON escaping makes any content safe inside the column). allow_nan=False:
    # NaN/Infinity are not JSON and never stored as a number (the schema names the field first).
    return json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)


def _number(value: Any) -> Any:
    """A numpy or Python real as a float (validation then refuses NaN/Infinity); other values as given."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _count(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return value
    return int(as_float) if as_float.is_integer() else as_float


def _loads(text: str) -> Any:
    """A stored JSON value. Stores written before values were validated may hold NaN/Infinity:
    read as null (a missing value), so no reader ever does arithmetic on a number that is not one."""
    return json.loads(text, parse_constant=lambda _: None)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class StoreError(EvalkitError):
    """The file is not a usable evalkit results store (missing, foreign, corrupt, read-only)."""


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


_SQLITE_HEADER = b"SQLite format 3\x00"


def _looks_like_sqlite(path: Path) -> bool:
    """An empty file (a new store) or one that starts with SQLite's header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the results store ({exc.strerror or exc})") from None
    return head in (b"", _SQLITE_HEADER)


def _sqlite_problem(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return "the results store is read-only (no permission to write it or its folder); use a writable --store"
    if "malformed" in text or "not a database" in text or "file is encrypted" in text:
        return f"not an evalkit results store, or a corrupt one ({text}); the file was not changed"
    if "unable to open" in text:
        return f"cannot open the results store ({text})"
    return f"results store error: {text}"


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
    # cached per-run item values for comparisons (evalkit.store_content)
    3: store_content.MIGRATION_3,
}


class ResultsStore:
    """Connection to one results database. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False):
        """``read_only``: open an existing store without ever changing it (sqlite ``mode=ro``):
        a missing file is an error, not a new store, and a file that is not an evalkit store is
        refused untouched. Otherwise the store is created or migrated as needed."""
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self._lock = threading.RLock()
        self._kinds: dict[str, str] = {}
        self._contents = store_content.ContentCache()
        if read_only:
            self._open_read_only()
            return
        if self.path.is_dir():
            raise StoreError(f"{self.path}: a folder, not a results store file")
        if self.path.exists() and not _looks_like_sqlite(self.path):
            raise StoreError(f"{self.path}: not an evalkit results store (not an SQLite database); the file was not changed")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store's folder ({exc.strerror or exc})") from None
        try:
            if self.path.exists() and self.path.stat().st_size > 0:
                self._refuse_foreign_file()
            self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            if self.path.stat().st_size > 0:
                # refuse someone else's database before anything (journal mode, tables) is changed
                self._check_evalkit_store()
            self._set_up()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {_sqlite_problem(exc)}") from None

    def _set_up(self) -> None:
        """WAL mode, pragmas and migrations. Two processes that create the same new store at once
        (both ranks of a torchrun fine-tune, two commands started together) meet a lock that
        SQLite reports at once instead of waiting for (switching to WAL, upgrading a fresh file):
        the later one retries for up to a minute, as the busy timeout would."""
        deadline = time.monotonic() + 60
        pause = 0.005
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._conn.execute("PRAGMA busy_timeout=60000")
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _open_read_only(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path}: a folder, not a results store file")
        if not self.path.is_file():
            raise StoreError(f"no results store at {self.path} (read-only commands never create one; pass --store)")
        if not _looks_like_sqlite(self.path):
            raise StoreError(f"{self.path}: not an evalkit results store (not an SQLite database); the file was not changed")
        try:
            self._refuse_foreign_file()
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout=60000")
            self._check_evalkit_store()
            version = self._schema_version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {_sqlite_problem(exc)}") from None
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path}: results store has schema version {version}, but this evalkit "
                f"understands up to {SCHEMA_VERSION}; upgrade evalkit (the store was not changed)"
            )

    def _refuse_foreign_file(self) -> None:
        """Look at the tables without any side effect (``immutable=1``: no lock, no -wal or -shm
        file, even for a database in WAL mode), so a foreign file is refused before a real
        connection touches it. With a -wal file beside it the tables may live in the WAL only
        (a store being written): then the ordinary connection checks."""
        if self.path.with_name(self.path.name + "-wal").exists():
            return
        conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
        if (tables or self.read_only) and not {"meta", "runs", "metrics", "samples"} <= tables:
            raise StoreError(
                f"{self.path}: not an evalkit results store (an SQLite database without evalkit's tables); "
                "the file was not changed"
            )

    def _check_evalkit_store(self) -> None:
        """A non-empty SQLite file must hold evalkit's tables and an integer schema version."""
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables and not self.read_only:
            return  # an empty database (e.g. made by sqlite3 with no tables yet) becomes a store
        if not {"meta", "runs", "metrics", "samples"} <= tables:
            raise StoreError(
                f"{self.path}: not an evalkit results store (an SQLite database without evalkit's tables); "
                "the file was not changed"
            )
        self._schema_version()

    # -- schema -----------------------------------------------------------------------------

    def _schema_version(self) -> int:
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            return 0
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise StoreError(
                f"{self.path}: schema_version {row[0]!r} is not an integer: not an evalkit results store, "
                "or a damaged one (the file was not changed)"
            ) from None

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
        self._writable()
        schema.check_kind(kind)
        if model is not None:
            schema.check_safe_id(model, "model name", allow_slash=True)
        from evalkit import __version__

        schema.validate_config(kind, config or {}, where=f"{kind} run of {model or 'no model'}")
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

    def check_run(
        self,
        kind: str,
        model: str | None,
        config: dict[str, Any],
        samples: Iterable[tuple[str, dict[str, Any]]] = (),
        metrics: dict[str, Metric | float | int | None] | None = None,
        *,
        source: str = "input",
    ) -> list[tuple[str, dict[str, Any]]]:
        """Check a whole run against the schema without writing anything; returns the samples as
        they would be stored. Importers call this first, so bad input never leaves a run behind."""
        where = str(source)
        try:
            schema.check_kind(kind, where)
            if model is not None:
                schema.check_safe_id(model, "model name", allow_slash=True)
            schema.validate_config(kind, config, where=where)
            checked = schema.validate_samples(kind, samples, where=where)
            for name, m in (metrics or {}).items():
                m = m if isinstance(m, Metric) else Metric(m)
                schema.validate_metric(kind, name, _number(m.value), _number(m.stderr), _count(m.n), where=where)
        except schema.SchemaError as exc:
            message = str(exc)
            raise schema.SchemaError(message if message.startswith(where) else f"{where}: {message}") from None
        seen: set[str] = set()
        for item_id, _ in checked:
            if item_id in seen:
                raise schema.SchemaError(f"{where}: item {item_id!r} appears twice (one would overwrite the other)")
            seen.add(item_id)
        return checked

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
            config=_loads(config),
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

    def writer_alive(self, run_id: str) -> int | None:
        """The pid of a live process on this host still writing the run (None when there is none)."""
        row = self._execute("SELECT status, pid, host FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            return None
        status, pid, host = row
        if status == "running" and pid and host == socket.gethostname() and _pid_alive(int(pid)):
            return int(pid)
        return None

    def delete_run(self, run_id: str, *, force: bool = False) -> str:
        """Delete a run with its metrics and samples. A run another live process is still
        writing is refused unless ``force`` (the writer would fail on its next write)."""
        self._writable()
        run_id = self.get_run(run_id, with_metrics=False).id
        pid = self.writer_alive(run_id)
        if pid is not None and not force and pid != os.getpid():
            raise EvalkitError(
                f"run {run_id} is still being written by process {pid} on this host; stop it first, "
                "or pass --force to delete it anyway"
            )
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM samples WHERE run_id=?", (run_id,))
                store_content.forget_item_set(self._conn, run_id)
                store_content.forget_item_values(self._conn, run_id)
                self._conn.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
                self._conn.execute("DELETE FROM runs WHERE id=?", (run_id,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return run_id

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only; this command cannot change the store")

    def _kind_of(self, run_id: str) -> str:
        if run_id not in self._kinds:
            row = self._execute("SELECT kind FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise UnknownRunError(f"no run {run_id!r} in {self.path}")
            self._kinds[run_id] = row[0]
        return self._kinds[run_id]

    def set_status(self, run_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        finished = utc_now() if status != "running" else None
        self._execute("UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, finished, run_id))
        if status != "running":
            self.item_sets([run_id])  # cached now, so listings never count items
            self.item_values(run_id)  # and comparisons never read samples

    def run_dir(self, run_id: str) -> Path:
        """A folder beside the database for a run's files (lm-eval JSON, checkpoints' logs...)."""
        schema.check_safe_id(run_id, "run id")
        path = self.path.parent / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- metrics and samples ----------------------------------------------------------------

    def metrics(self, run_id: str) -> dict[str, Metric]:
        rows = self._execute(
            "SELECT name, value, stderr, n FROM metrics WHERE run_id=? ORDER BY name", (run_id,)
        ).fetchall()
        return {name: Metric(_finite(value), _finite(stderr), n) for name, value, stderr, n in rows}

    def _all_metrics(self, run_ids: list[str]) -> dict[str, dict[str, Metric]]:
        out: dict[str, dict[str, Metric]] = {}
        if not run_ids:
            return out
        rows = self._execute("SELECT run_id, name, value, stderr, n FROM metrics ORDER BY run_id, name").fetchall()
        wanted = set(run_ids)
        for run_id, name, value, stderr, n in rows:
            if run_id in wanted:
                out.setdefault(run_id, {})[name] = Metric(_finite(value), _finite(stderr), n)
        return out

    def samples(self, run_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(item_id, payload) in the order they were first written."""
        rows = self._sample_rows(run_id)
        with self._lock:
            resolved = self._contents.resolve(self._conn, rows)
        yield from resolved

    def samples_with_refs(self, run_id: str) -> list[tuple[str, Any, dict[str, str] | None]]:
        """``(item_id, payload, refs)`` in sample order, shared texts not put back: a field whose
        value is stored once for all runs is null in ``payload`` and named by its content hash in
        ``refs`` (equal texts, equal hashes); :meth:`shared_values` gives the values."""
        rows = self._sample_rows(run_id)
        with self._lock:
            return self._contents.unresolved(rows)

    def shared_values(self, digests: Iterable[str]) -> dict[str, Any]:
        """content hash (from :meth:`samples_with_refs`) -> the value; lists are not copied."""
        with self._lock:
            return self._contents.values_of(self._conn, digests)

    def samples_of_items(self, run_id: str, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """item id -> payload for the given items of a run (those it has): a few texts without
        reading the whole run."""
        wanted = list(dict.fromkeys(item_ids))
        rows: list[tuple[str, str, str | None]] = []
        shared = self._shared_column()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows += self._execute(
                f"SELECT item_id, payload, {shared} FROM samples WHERE run_id=? AND item_id IN ({','.join('?' * len(chunk))})",
                (run_id, *chunk),
            ).fetchall()
        with self._lock:
            return dict(self._contents.resolve(self._conn, rows))

    def _shared_column(self) -> str:
        # a store older than shared content, opened read-only (so not migrated), has no `shared`
        return "shared" if self.read_only is False or self._schema_version() >= 2 else "NULL"

    def _sample_rows(self, run_id: str) -> list[tuple[str, str, str | None]]:
        """A run's stored ``(item_id, payload JSON, shared JSON)`` rows in sample order."""
        return self._execute(
            f"SELECT item_id, payload, {self._shared_column()} FROM samples WHERE run_id=? ORDER BY seq", (run_id,)
        ).fetchall()

    def sample_count(self, run_id: str) -> int:
        return self._execute("SELECT COUNT(*) FROM samples WHERE run_id=?", (run_id,)).fetchone()[0]

    def done_items(self, run_id: str) -> set[str]:
        rows = self._execute("SELECT item_id FROM samples WHERE run_id=?", (run_id,)).fetchall()
        return {r[0] for r in rows}

    def item_sets(self, run_ids: Iterable[str]) -> dict[str, tuple[int, str | None]]:
        """run id -> (number of items, item-set hash), from the cache (filled on first use)."""
        with self._lock:
            return store_content.item_sets(self._conn, list(run_ids))

    def item_values(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        """``(item_id, values)`` in sample order: the few fields of each sample that comparisons
        use (:data:`evalkit.store_content.ITEM_VALUE_FIELDS`), from the cache (filled when the run
        finishes; computed from the samples, and cached when the store is writable, otherwise)."""
        with self._lock:
            cached = store_content.cached_item_values(self._conn, run_id)
        if cached is not None:
            return cached
        values = store_content.item_values_of_rows(self._kind_of(run_id), self._sample_rows(run_id))
        status = self._execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        if not self.read_only and status is not None and status[0] != "running":  # a running run's items still change
            with self._lock:
                store_content.remember_item_values(self._conn, run_id, values)
        return values

    def write_samples(self, run_id: str, items: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Insert or replace samples in one transaction; returns how many were written.

        Every payload is checked against the run kind's schema first: one bad payload (wrong
        type, NaN/Infinity) raises :class:`~evalkit.schema.SchemaError` and writes none."""
        self._writable()
        kind = self._kind_of(run_id)
        if not (isinstance(items, schema.CheckedSamples) and items.kind == kind):  # else check_run checked them
            items = schema.validate_samples(kind, items, where=f"run {run_id}")
        now = utc_now()
        written: set[str] = set()
        contents: list[tuple[str, str]] = []
        rows = []
        for item_id, payload in items:
            stored, shared = self._contents.split(payload, written, contents)
            rows.append((run_id, item_id, run_id, stored, shared, now))
        count = len(rows)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                store_content.insert_contents(self._conn, contents)
                # keep the original position of an item that is rewritten (no duplicates)
                self._conn.executemany(
                    "INSERT INTO samples (run_id, item_id, seq, payload, shared, created_at) VALUES (?, ?,"
                    " (SELECT COALESCE(MAX(seq), -1) + 1 FROM samples WHERE run_id=?), ?, ?, ?)"
                    " ON CONFLICT(run_id, item_id) DO UPDATE SET payload=excluded.payload,"
                    " shared=excluded.shared, created_at=excluded.created_at",
                    rows,
                )
                if count:
                    store_content.forget_item_set(self._conn, run_id)
                    store_content.forget_item_values(self._conn, run_id)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return count

    def write_metrics(self, run_id: str, metrics: dict[str, Metric | float | int | None]) -> None:
        """Write metrics in one transaction after checking all of them (known name for the
        kind, finite value and stderr, n a count): a NaN is never stored as a number."""
        self._writable()
        kind = self._kind_of(run_id)
        checked = []
        for name, m in metrics.items():
            if not isinstance(m, Metric):
                m = Metric(m)
            m = Metric(_number(m.value), _number(m.stderr), _count(m.n))
            schema.validate_metric(kind, name, m.value, m.stderr, m.n, where=f"run {run_id}")
            checked.append((name, m))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for name, m in checked:
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
        if self.read_only:
            return  # a cache is an optimisation: a read-only store simply does not remember
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
        """Store a document written by :meth:`export_run`; the run keeps its id.

        Everything is checked before anything is written (a safe run id, a known kind and status,
        an object config, known finite metrics, object payloads of the kind's schema): a bad
        document leaves the store as it was."""
        self._writable()
        run, metrics, samples = _checked_export(doc, source)
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
                for name, m in metrics:
                    self._conn.execute(
                        "INSERT INTO metrics (run_id, name, value, stderr, n) VALUES (?,?,?,?,?)",
                        (run["id"], name, m.value, m.stderr, m.n),
                    )
                now = utc_now()
                written: set[str] = set()
                contents: list[tuple[str, str]] = []
                rows = []
                for seq, (item_id, payload) in enumerate(samples):
                    stored, shared = self._contents.split(payload, written, contents)
                    rows.append((run["id"], item_id, seq, stored, shared, now))
                store_content.insert_contents(self._conn, contents)
                self._conn.executemany(
                    "INSERT INTO samples (run_id, item_id, seq, payload, shared, created_at) VALUES (?,?,?,?,?,?)", rows
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self.item_sets([run["id"]])  # cached now, as for a run that finishes here
        self.item_values(run["id"])
        return run["id"]


def _checked_export(doc: Any, source: str) -> tuple[dict[str, Any], list[tuple[str, Metric]], list[tuple[str, str]]]:
    """(run, metrics, (item id, payload JSON) samples) of a run export, every field checked."""
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise EvalkitError(f"{source}: not an evalkit run export (expected \"format\": \"{EXPORT_FORMAT}\")")
    version = doc.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise EvalkitError(f"{source}: field 'format_version' must be an integer, not {version!r:.40}")
    if version > EXPORT_FORMAT_VERSION:
        raise StoreVersionError(f"{source}: run export format version {version} is newer than this evalkit")
    run = doc.get("run")
    if not isinstance(run, dict):
        raise EvalkitError(f"{source}: field 'run' must be a JSON object")
    for key in ("id", "kind", "config", "created_at", "status"):
        if key not in run:
            raise EvalkitError(f"{source}: field 'run.{key}' is missing")
    try:
        schema.check_safe_id(run["id"], "run id")
        schema.check_kind(run["kind"], "field 'run.kind'")
        schema.check_status(run["status"], "field 'run.status'")
        where = f"{source}: run {run['id']}"
        schema.validate_config(run["kind"], run["config"], where=where)
        for key in ("model", "model_path", "model_hash", "evalkit_version", "git_commit", "finished_at"):
            if run.get(key) is not None and not isinstance(run[key], str):
                raise EvalkitError(f"{where}: field 'run.{key}' must be a string or null, not {run[key]!r:.40}")
        if not isinstance(run["created_at"], str):
            raise EvalkitError(f"{where}: field 'run.created_at' must be a string, not {run['created_at']!r:.40}")
        if run.get("model") is not None:
            schema.check_safe_id(run["model"], f"{where}: field 'run.model'", allow_slash=True)
        raw_metrics = run.get("metrics") or {}
        if not isinstance(raw_metrics, dict):
            raise EvalkitError(f"{where}: field 'run.metrics' must be a JSON object")
        metrics = []
        for name, m in raw_metrics.items():
            if not isinstance(m, dict):
                raise EvalkitError(f"{where}: field 'run.metrics.{name}' must be a JSON object with value, stderr, n")
            metric = Metric(_number(m.get("value")), _number(m.get("stderr")), _count(m.get("n")))
            schema.validate_metric(run["kind"], name, metric.value, metric.stderr, metric.n, where=where)
            metrics.append((name, metric))
        raw_samples = doc.get("samples") or []
        if not isinstance(raw_samples, list):
            raise EvalkitError(f"{where}: field 'samples' must be a JSON list")
        samples, seen = [], set()
        for i, sample in enumerate(raw_samples):
            if not isinstance(sample, dict) or "item_id" not in sample or "payload" not in sample:
                raise EvalkitError(f"{where}: samples[{i}] must be an object with 'item_id' and 'payload'")
            item_id, payload = sample["item_id"], sample["payload"]
            if not isinstance(item_id, str):
                raise EvalkitError(f"{where}: samples[{i}]: field 'item_id' must be a string, not {item_id!r:.40}")
            if item_id in seen:
                raise EvalkitError(f"{where}: samples[{i}]: item {item_id!r} appears twice")
            seen.add(item_id)
            samples.append((item_id, schema.validate_sample(run["kind"], item_id, payload, where=where)))
    except schema.SchemaError as exc:
        message = str(exc)
        raise EvalkitError(message if message.startswith(source) else f"{source}: {message}") from None
    return run, metrics, samples


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
