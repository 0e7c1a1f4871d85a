"""Results store write throughput: one transaction per sample (what crash-safety needs)
against one transaction for all samples (the fastest possible), in the same process."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from evalkit.store import ResultsStore

N = 5000


def _payload(i: int) -> dict:
    return {"instruction": f"instruction {i}", "response": "x" * 400, "score": i % 100}


def run() -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "bench.db")
        run_a = store.start_run("judge-score", "bench-a", {"n": N})
        started = time.perf_counter()
        store.write_samples(run_a.id, ((f"item-{i}", _payload(i)) for i in range(N)))
        batch = time.perf_counter() - started
        run_b = store.start_run("judge-score", "bench-b", {"n": N})
        started = time.perf_counter()
        for i in range(N):
            run_b.add_sample(f"item-{i}", _payload(i))
        each = time.perf_counter() - started
        store.close()
    rows.append({"mode": "one transaction (baseline)", "samples": N, "seconds": batch, "samples_per_s": N / batch})
    rows.append({"mode": "commit per sample", "samples": N, "seconds": each, "samples_per_s": N / each})
    return {
        "title": "results store: sample writes",
        "rows": rows,
        "ratios": {"per-sample commit / one transaction (time)": each / batch},
    }
