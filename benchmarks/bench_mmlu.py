"""evalkit mmlu against plain lm-eval (library call), same model, data, limit and batch size.

The model is a randomly initialised GPT-2 (6 layers, width 384, the real 50,257-token vocabulary
and tokenizer: about 30M parameters, a quarter of ``gpt2``), big enough that the forward passes
dominate, small enough to run in minutes on two shared CPU cores; the data are five subjects of
the real MMLU test split (../shared/data/mmlu). Every variant runs
in this process, interleaved and repeated, after a warm-up; the fastest repetition counts.

Rows:
* ``lm-eval simple_evaluate (default TaskManager)``: what a plain library call does: lm-eval's
  task manager indexes all of its ~15,000 task definitions, then evaluates.
* ``lm-eval simple_evaluate (task folder only)``: the same call with a task manager that reads
  only the task folder: the baseline for evalkit's overhead (same work, same index).
* ``evalkit run_mmlu, env report inline``: the whole ``evalkit mmlu`` path (data check, task
  folder, model hash, progress bar, store writes, lm-eval's JSON and sample files) with lm-eval's
  environment report collected where lm-eval collects it: evalkit's overhead.
* ``evalkit run_mmlu``: as shipped: the environment report (torch's collect_env, which lm-eval
  writes into every results JSON) is collected in a background thread while the model works.
* ``evalkit run_mmlu, batch size B``: lm-eval's default batch size is 1; larger batches are kept
  as a speed-up only if every accuracy is identical (checked below).

Peak memory is the process's peak resident set during the variant (``VmHWM``, reset before each
run through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EVALKIT_SHARED_DATA") or REPO.parent / "shared" / "data")
SUBJECTS = ["abstract_algebra", "anatomy", "marketing", "world_religions", "high_school_psychology"]
LIMIT = 4
BATCH_SIZE = 1  # lm-eval's default
FAST_BATCH_SIZE = 8
REPEATS = 2
MODEL = dict(n_layer=6, n_head=6, n_embd=384, n_positions=1024, vocab_size=50257)


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build_model(out: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from evalkit.assets import save_hf_tokenizer

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**MODEL)).save_pretrained(out)
    save_hf_tokenizer(out, str(SHARED / "gpt2-tokenizer"))
    return out


def _accuracies(results: dict) -> dict[str, float]:
    return {k: v["acc,none"] for k, v in results["results"].items()}


def run() -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not (SHARED / "mmlu" / "test.jsonl").is_file():
        raise SystemExit(f"bench_mmlu needs {SHARED}/mmlu/test.jsonl and gpt2-tokenizer/ (set EVALKIT_SHARED_DATA)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["EVALKIT_CACHE"] = str(tmp_path / "cache")  # fresh task folder, checkpoint hashes
        model_dir = _build_model(tmp_path / "gpt2-random-6x384")

        import lm_eval
        from lm_eval.tasks import TaskManager

        from evalkit.mmlu import load_catalog, run_mmlu, select_tasks
        from evalkit.store import ResultsStore

        data = SHARED / "mmlu"
        task_set, _ = select_tasks(load_catalog(), subjects=SUBJECTS, data=data)
        store = ResultsStore(tmp_path / "bench.db")
        n_docs = LIMIT * len(SUBJECTS)
        n_requests = 4 * n_docs

        def plain(include_defaults: bool, batch_size: int = BATCH_SIZE) -> dict:
            manager = TaskManager(include_path=str(task_set.include_path), include_defaults=include_defaults)
            return _accuracies(
                lm_eval.simple_evaluate(
                    model="hf",
                    model_args={"pretrained": str(model_dir)},
                    tasks=["mmlu"],
                    task_manager=manager,
                    limit=LIMIT,
                    batch_size=batch_size,
                    device="cpu",
                    log_samples=True,
                )
            )

        own_seconds: dict[str, list[float]] = {}  # variant -> evalkit's own steps (prepare + store)
        current = [""]

        def evalkit(batch_size: int = BATCH_SIZE) -> dict:
            result = run_mmlu(store, model_dir, subjects=SUBJECTS, data=data, limit=LIMIT, batch_size=batch_size, device="cpu")
            own_seconds.setdefault(current[0], []).append(result.timings["prepare"] + result.timings["store"])
            return {k: m.value for k, m in store.metrics(result.run_id).items()}

        import evalkit.mmlu.runner as runner

        def env_report_inline() -> dict:
            background = runner.env_report_in_background
            runner.env_report_in_background = contextlib.nullcontext
            try:
                return evalkit()
            finally:
                runner.env_report_in_background = background

        variants = {
            "lm-eval simple_evaluate (default TaskManager)": lambda: plain(True),
            "lm-eval simple_evaluate (task folder only)": lambda: plain(False),
            "evalkit run_mmlu, env report inline": env_report_inline,
            "evalkit run_mmlu": lambda: evalkit(),
            f"evalkit run_mmlu, batch size {FAST_BATCH_SIZE}": lambda: evalkit(FAST_BATCH_SIZE),
        }
        # warm-up: imports, kernels, the json data set cache
        run_mmlu(store, model_dir, subjects=SUBJECTS[:1], data=data, limit=1, device="cpu", progress=False)

        seconds: dict[str, list[float]] = {name: [] for name in variants}
        peaks: dict[str, float] = {}
        accuracies: dict[str, dict] = {}
        for _ in range(REPEATS):
            for name, fn in variants.items():
                current[0] = name
                _reset_peak()
                started = time.perf_counter()
                accuracies[name] = fn()
                seconds[name].append(time.perf_counter() - started)
                peaks[name] = max(peaks.get(name, 0.0), _peak_mib())
        store.close()

    # the same numbers, under lm-eval's names: evalkit's acc/<subject> is lm-eval's mmlu_<subject>
    def lm_eval_names(acc: dict) -> dict:
        if "acc" not in acc:
            return acc
        return {("mmlu" if k == "acc" else f"mmlu_{k.removeprefix('acc/')}"): v for k, v in acc.items()}

    reference = accuracies["lm-eval simple_evaluate (task folder only)"]
    rows = []
    for name in variants:
        best = min(seconds[name])
        rows.append(
            {
                "variant": name,
                "seconds": best,
                "requests_per_s": n_requests / best,
                "peak_rss_mib": peaks[name],
                "same_accuracies": lm_eval_names(accuracies[name]) == reference,
            }
        )
    by_name = {r["variant"]: r for r in rows}
    baseline = by_name["lm-eval simple_evaluate (task folder only)"]["seconds"]
    inline = "evalkit run_mmlu, env report inline"
    # evalkit's own steps, timed directly: data check, task folder, model hash and lm-eval's task
    # objects (which plain lm-eval builds inside its call), then store and file writes. Less
    # sensitive than the end-to-end ratio to how busy the machine was during the forward passes.
    own_work = min(own_seconds[inline])
    fast = by_name[f"evalkit run_mmlu, batch size {FAST_BATCH_SIZE}"]
    return {
        "title": f"MMLU: evalkit vs lm-eval, GPT-2 6x384 (random weights), {len(SUBJECTS)} subjects x {LIMIT} questions, CPU",
        "rows": rows,
        "ratios": {
            "evalkit (env report inline) / lm-eval same index (time; goal <= 1.05)": by_name["evalkit run_mmlu, env report inline"]["seconds"] / baseline,
            "evalkit as shipped / lm-eval same index (time)": by_name["evalkit run_mmlu"]["seconds"] / baseline,
            "evalkit's own work / lm-eval same index (time)": own_work / baseline,
            "evalkit / lm-eval default TaskManager (time)": by_name["evalkit run_mmlu"]["seconds"]
            / by_name["lm-eval simple_evaluate (default TaskManager)"]["seconds"],
            f"batch {FAST_BATCH_SIZE} / batch {BATCH_SIZE} (evalkit time)": fast["seconds"] / by_name["evalkit run_mmlu"]["seconds"],
            f"batch {FAST_BATCH_SIZE} gives identical accuracies": "yes" if fast["same_accuracies"] else "no",
        },
        "config": {"subjects": SUBJECTS, "limit": LIMIT, "batch_size": BATCH_SIZE, "repeats": REPEATS, "model": MODEL},
    }
