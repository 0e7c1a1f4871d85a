"""``evalkit store merge OTHER.db``: bring another store's runs into this one.

For plans trained on several machines (``evalkit experiment --only VARIANT`` on each): every
run of OTHER is copied with its id, metrics, samples and files (``runs/RUN_ID/``). A run whose
id is already here is skipped when it is the same run (same export document) and is a conflict
otherwise; any conflict refuses the whole merge before anything is written. Each run is
imported in one transaction, so an interrupted merge leaves whole runs and simply re-runs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore


@dataclass
class MergeResult:
    added: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """The parts of an export that make two runs the same run (a run still marked running in
    one store is imported as interrupted, so the status is compared after that mapping)."""
    run = dict(doc["run"])
    run["status"] = "interrupted" if run.get("status") == "running" else run.get("status")
    return {"run": run, "samples": doc["samples"]}


def merge_stores(target: ResultsStore, other_path: str | Path) -> MergeResult:
    other_path = Path(other_path)
    if not other_path.is_file():
        raise EvalkitError(f"{other_path}: no such store file")
    if other_path.resolve() == Path(target.path).resolve():
        raise EvalkitError(f"{other_path}: cannot merge a store into itself")
    result = MergeResult()
    with ResultsStore(other_path, read_only=True) as other:  # OTHER is never changed (not even migrated)
        docs = [other.export_run(r.id) for r in other.list_runs()]
        conflicts = []
        todo = []
        for doc in docs:
            run_id = doc["run"]["id"]
            try:
                mine = target.export_run(run_id)
            except EvalkitError:
                todo.append(doc)
                continue
            if _comparable(mine) == _comparable(doc):
                result.already_present.append(run_id)
            else:
                conflicts.append(run_id)
        if conflicts:
            raise EvalkitError(
                f"{other_path}: {len(conflicts)} run id(s) exist in both stores with different contents "
                f"({', '.join(conflicts[:5])}{', ...' if len(conflicts) > 5 else ''}); nothing was merged"
            )
        for doc in todo:
            run_id = doc["run"]["id"]
            files = other.path.parent / "runs" / run_id  # not run_dir(): that would create it in OTHER
            target.import_run(doc, source=str(other_path))
            if files.is_dir() and any(files.iterdir()):
                shutil.copytree(files, target.run_dir(run_id), dirs_exist_ok=True)
            result.added.append(run_id)
    return result
