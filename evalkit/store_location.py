"""Which results store a command reads, and what to say when it is not there.

Every command uses one store per working directory by default (``$EVALKIT_STORE`` or
``evalkit-results/evalkit.db``). A command that only reads results must not create an empty
store where none exists (the user would see "nothing to show" and never learn where their
results went); it stops with one line that names the stores it can see nearby instead.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from evalkit.errors import EvalkitError

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", "site-packages"}
_MAX_DEPTH = 3  # folders below the working directory searched for stores
_MAX_SHOWN = 5


def _runs_in(path: Path) -> int | None:
    """Runs in an evalkit store, opened read-only (never created or changed); None if it is not one."""
    try:
        # immutable: no -shm/-wal files appear beside a store that is only being looked at
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def nearby_stores(root: Path | None = None) -> list[tuple[Path, int]]:
    """``(path relative to root, runs)`` for the evalkit stores (``*.db``) in ``root`` and up to
    three folders below it, most runs first."""
    root = Path(root or Path.cwd())
    found: list[tuple[Path, int]] = []
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = [] if depth >= _MAX_DEPTH else sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".db"):
                path = Path(folder) / name
                runs = _runs_in(path)
                if runs is not None:
                    found.append((path.relative_to(root), runs))
    return sorted(found, key=lambda item: (-item[1], str(item[0])))


def require_store(path: str | os.PathLike[str]) -> Path:
    """``path`` when a store exists there; else :class:`EvalkitError` naming the stores nearby."""
    path = Path(path)
    if path.is_file():
        return path
    stores = nearby_stores()
    if stores:
        shown = ", ".join(f"{p} ({n} run{'s' if n != 1 else ''})" for p, n in stores[:_MAX_SHOWN])
        more = f" and {len(stores) - _MAX_SHOWN} more" if len(stores) > _MAX_SHOWN else ""
        first = stores[0][0]
        hint = f"stores in this folder: {shown}{more}; read one with --store {first} or `export EVALKIT_STORE={first}`"
    else:
        hint = ("no evalkit store in this folder either; run `evalkit demo`, or a command that stores results "
                "(finetune, generate, mmlu, judge, import), first, or pass --store PATH")
    if os.environ.get("EVALKIT_STORE") and Path(os.environ["EVALKIT_STORE"]) == path:
        label = "$EVALKIT_STORE"
    else:
        from evalkit.store import DEFAULT_STORE

        label = "the default store" if path == Path(DEFAULT_STORE) else "--store"
    raise EvalkitError(f"no results store at {path} ({label}; nothing was created); {hint}")
