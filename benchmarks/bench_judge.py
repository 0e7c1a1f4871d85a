"""Judge throughput against the loopback Ollama server with a fixed per-request latency.

* items/s at concurrency 1, 2, 4, 8 (goal: speed-up >= 0.9 N at N = 8, against N = 1 run in
  the same process), score mode, one request per item. The server runs in its own process,
  as Ollama does, so its work does not compete with the judge for this process's GIL;
* a cache-warm re-run of 805 pairwise items, AlpacaEval's size (goal: no judge requests,
  under one second): the first run fills the cache, its run is deleted, the second run
  rebuilds it from cached answers alone.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the test server lives in tests/judge
    sys.path.insert(0, str(REPO))

from evalkit.metrics.win_rate import pairwise_metrics  # noqa: E402
from evalkit.items import instruction_item_id  # noqa: E402
from evalkit.judge import run_judge  # noqa: E402
from evalkit.store import ResultsStore  # noqa: E402
from tests.judge.fake_ollama import FakeOllama, Reply, Token  # noqa: E402

LATENCY = 0.2  # seconds per judge request (a real 8B judge on a GPU takes longer)
ITEMS = 64
CONCURRENCY = (1, 2, 4, 8)
WARM_ITEMS = 805


def _generate_run(store: ResultsStore, n: int, model: str) -> str:
    with store.start_run("generate", model, {"eval_set": "bench", "n": n}) as run:
        run.add_samples(
            (
                instruction_item_id(f"Instruction number {i}: explain topic {i % 37}.", ""),
                {
                    "instruction": f"Instruction number {i}: explain topic {i % 37}.",
                    "input": "",
                    "output": f"A reference answer about topic {i % 37}. " * (3 + i % 5),
                    "response": f"The model's answer {i}. " * (2 + i % 7),
                },
            )
            for i in range(n)
        )
    return run.id


@contextlib.contextmanager
def _server_process(latency: float):
    """The test server in a child process; yields its URL (the child exits when stdin closes)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.judge.fake_ollama", "--latency", str(latency), "--max-seconds", "600"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        yield child.stdout.readline().strip()
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def run() -> dict:
    rows, ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        with _server_process(LATENCY) as url:
            # one-off costs (imports, TLS context, first connection) outside the timed runs
            warm_store = ResultsStore(Path(tmp) / "warmup.db")
            run_judge(warm_store, responses_run=_generate_run(warm_store, 2, "warmup"), hosts=[url], progress=False)
            warm_store.close()
            for n in CONCURRENCY:
                store = ResultsStore(Path(tmp) / f"c{n}.db")
                gen = _generate_run(store, ITEMS, "bench-model")
                before = httpx.get(f"{url}/_fake/counts").json().get("/api/chat", 0)
                started = time.perf_counter()
                run_judge(store, responses_run=gen, hosts=[url], concurrency=n, progress=False)
                seconds = time.perf_counter() - started
                calls = httpx.get(f"{url}/_fake/counts").json().get("/api/chat", 0) - before
                rates[n] = ITEMS / seconds
                rows.append({"case": f"concurrency {n}", "items": ITEMS, "judge_calls": calls,
                             "seconds": seconds, "items_per_s": rates[n], "speedup": rates[n] / rates[1], "goal": 0.9 * n})
                store.close()
        for n in CONCURRENCY[1:]:
            ratios[f"speed-up at concurrency {n} (goal >= {0.9 * n:.1f})"] = rates[n] / rates[1]

    with tempfile.TemporaryDirectory() as tmp, FakeOllama() as server:
        server.script(lambda req: Reply(tokens=[Token("2", math.log(0.7), {"1": math.log(0.3)})]))
        store = ResultsStore(Path(tmp) / "warm.db")
        gen = _generate_run(store, WARM_ITEMS, "bench-alpaca")
        options = dict(responses_run=gen, hosts=[server.url], mode="pairwise", order="random", concurrency=8, progress=False)
        started = time.perf_counter()
        cold_id = run_judge(store, **options)
        cold = time.perf_counter() - started
        store.delete_run(cold_id)
        server.reset_counts()
        started = time.perf_counter()
        warm_id = run_judge(store, **options)
        warm = time.perf_counter() - started
        # the AlpacaEval metrics (a length-controlled GLM fit with cross-validation) are part of
        # every run's finish; timed alone on the same samples to show what the cache path costs
        started = time.perf_counter()
        pairwise_metrics([p for _, p in store.samples(warm_id)])
        metrics_seconds = time.perf_counter() - started
        rows.append({"case": "805 pairwise, cold (no latency)", "items": WARM_ITEMS, "judge_calls": "-",
                     "seconds": cold, "items_per_s": WARM_ITEMS / cold, "speedup": "-", "goal": "-"})
        rows.append({"case": "805 pairwise, cache-warm re-run", "items": WARM_ITEMS, "judge_calls": server.judge_calls,
                     "seconds": warm, "items_per_s": WARM_ITEMS / warm, "speedup": "-", "goal": "0 calls, < 1 s"})
        rows.append({"case": "  of which AlpacaEval metrics", "items": WARM_ITEMS, "judge_calls": "-",
                     "seconds": metrics_seconds, "items_per_s": "-", "speedup": "-", "goal": "-"})
        ratios["cache-warm re-run seconds (goal < 1)"] = warm
        ratios["cache-warm re-run seconds without the metrics"] = warm - metrics_seconds
        ratios["cache-warm judge calls (goal 0)"] = server.judge_calls
        store.close()
    return {"title": f"judge throughput (test server, {LATENCY * 1000:.0f} ms per request)", "rows": rows, "ratios": ratios}
