"""Crash-safe training checkpoints.

``OUT/checkpoints/step-NNNNNNNN/`` is a complete Hugging Face checkpoint (loadable by
``from_pretrained`` and lm-eval) plus ``training_state.pt``: optimizer, scheduler, grad scaler,
every process's RNG states and the data position (epoch, batch). It is written into a temporary
folder, flushed to disk, then renamed into place; ``OUT/checkpoints/latest.json`` is then
replaced atomically to point at it, and only after that are older checkpoints deleted. A process
killed at any instant therefore leaves ``latest.json`` naming a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "training_state.pt"
LATEST = "latest.json"


def checkpoints_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=2, ensure_ascii=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_training_checkpoint(
    out_dir: str | Path,
    step: int,
    write_model: "callable",
    state: dict[str, Any],
    *,
    keep: int = 1,
) -> Path:
    """Write checkpoint ``step`` atomically; ``write_model(folder)`` writes the HF files."""
    root = checkpoints_dir(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_model(tmp)
    torch.save(state, tmp / STATE_FILE)
    _fsync_tree(tmp)
    if final.exists():  # a re-run of the same step after a crash between rename and latest.json
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    write_json_atomic(root / LATEST, {"step": step, "dir": final.name})
    older = sorted(p for p in root.glob("step-*") if p.is_dir() and p != final)
    for stale in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    for leftover in root.glob(".tmp-step-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (the one ``latest.json`` names), or None."""
    root = checkpoints_dir(out_dir)
    pointer = root / LATEST
    if pointer.is_file():
        try:
            folder = root / json.loads(pointer.read_text())["dir"]
        except (OSError, ValueError, KeyError):
            folder = None
        if folder is not None and (folder / STATE_FILE).is_file():
            return folder
    # no pointer (or a damaged one): fall back to the highest step that is complete
    complete = sorted(p for p in root.glob("step-*") if (p / STATE_FILE).is_file() and (p / "config.json").is_file())
    return complete[-1] if complete else None


def load_training_state(folder: str | Path) -> dict[str, Any]:
    return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
