"""Fixtures for the MMLU tests: the real MMLU test split, small data folders cut from it, and an
evalkit cache folder of the session's own (task folders, converted checkpoints)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import shared_path

# questions per subject in the small data folder (test split, then dev split cut from the questions after them)
SMALL_TEST = {"abstract_algebra": 3, "anatomy": 7, "marketing": 5}
SMALL_DEV = 2
N_REQUESTS = 4 * sum(SMALL_TEST.values())  # one loglikelihood request per choice
SMALL_BATCH_SIZE = 4


@pytest.fixture(scope="session", autouse=True)
def evalkit_cache(tmp_path_factory) -> Path:
    """Task folders and converted checkpoints go to a temporary cache, not ~/.cache/evalkit."""
    folder = tmp_path_factory.mktemp("evalkit-cache")
    saved = os.environ.get("EVALKIT_CACHE")
    os.environ["EVALKIT_CACHE"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("EVALKIT_CACHE", None)
    else:
        os.environ["EVALKIT_CACHE"] = saved


@pytest.fixture(scope="session")
def mmlu_dir() -> Path:
    """The real MMLU test split (../shared/data/mmlu/test.jsonl), 14,042 questions."""
    return shared_path("mmlu", "test.jsonl").parent


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def mmlu_records(mmlu_dir) -> list[dict]:
    return read_jsonl(mmlu_dir / "test.jsonl")


@pytest.fixture(scope="session")
def small_mmlu(tmp_path_factory, mmlu_records) -> Path:
    """A cais/mmlu-shaped folder with subjects of different sizes (3, 7, 5 questions) and a dev
    split of 2 questions each: real MMLU questions, the dev ones taken from after the test ones."""
    folder = tmp_path_factory.mktemp("small-mmlu")
    test, dev = [], []
    for subject, n in SMALL_TEST.items():
        docs = [r for r in mmlu_records if r["subject"] == subject]
        test += docs[:n]
        dev += docs[n : n + SMALL_DEV]
    write_jsonl(folder / "test.jsonl", test)
    write_jsonl(folder / "dev.jsonl", dev)
    return folder


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, tiny_gpt2, small_mmlu):
    """evalkit's run (no --limit) of the tiny GPT-2 on the small folder: (MmluResult, store metrics, samples)."""
    from evalkit.mmlu import run_mmlu
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path_factory.mktemp("store") / "evalkit.db") as store:
        result = run_mmlu(store, tiny_gpt2, data=small_mmlu, batch_size=SMALL_BATCH_SIZE, device="cpu", progress=False)
        return result, store.metrics(result.run_id), dict(store.samples(result.run_id))
