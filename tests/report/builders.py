"""Runs written through the store API, following the README's payload and metric contract.

Texts are real (the book's test split with its fine-tuned GPT-2 medium responses, the two
models of ``eval-example-data.json``); the metric values given to these helpers are inputs the
report must show exactly, chosen per test.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.items import instruction_item_id, mmlu_item_id
from evalkit.store import Metric, ResultsStore

XSS = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><!-- & -->'


def load_json(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def add_generate(store: ResultsStore, model: str, records: list[dict], response_key: str, *, eval_set: str = "eval-example",
                 inject: str | None = None) -> str:
    with store.start_run("generate", model, {"eval_set": eval_set}) as run:
        for i, r in enumerate(records):
            response = r[response_key] + (inject if inject and i == 0 else "")
            run.add_sample(instruction_item_id(r["instruction"], r["input"]), {
                "instruction": r["instruction"], "input": r["input"], "output": r["output"], "response": response,
                "prompt": f"### Instruction:\n{r['instruction']}", "tokens": len(response.split()), "seconds": 0.01})
        run.log_metrics({"n": Metric(len(records), None, len(records))})
    return run.id


def add_judge_score(store: ResultsStore, model: str, records: list[dict], response_key: str, scores: list[int | None], *,
                    judge: str = "llama3", digest: str = "sha256:aaaa", template: str = "tpl-1", eval_set: str = "eval-example",
                    mean: float, stderr: float) -> str:
    config = {"eval_set": eval_set, "judge_model": judge, "judge_digest": digest, "template_hash": template}
    with store.start_run("judge-score", model, config) as run:
        for r, s in zip(records, scores):
            run.add_sample(instruction_item_id(r["instruction"], r["input"]), {
                "instruction": r["instruction"], "input": r["input"], "reference": r["output"], "response": r[response_key],
                "score": s, "status": "ok" if s is not None else "unparsed", "raw": [f"Score: {s}"]})
        ok = [s for s in scores if s is not None]
        run.log_metrics({"score_mean": Metric(mean, stderr, len(ok)), "parse_rate": Metric(len(ok) / len(scores))})
    return run.id


def add_mmlu(store: ResultsStore, model: str, metrics: dict[str, tuple[float, float, int]], *, num_fewshot: int = 0,
             questions: list[dict] | None = None) -> str:
    config = {"eval_set": "mmlu", "num_fewshot": num_fewshot, "lm_eval_version": "0.4.9", "template_hash": "mmlu-t"}
    with store.start_run("mmlu", model, config) as run:
        for q in questions or []:
            letters = "ABCD"
            run.add_sample(mmlu_item_id(q["subject"], q["doc_id"]), {
                "subject": q["subject"], "category": "stem", "doc_id": q["doc_id"], "question": q["question"],
                "choices": q["choices"], "prompt": q["question"], "loglikelihoods": [-1.0, -2.0, -3.0, -4.0],
                "pred": "A", "gold": letters[q["answer"]], "correct": q["answer"] == 0})
        run.log_metrics({name: Metric(*v) for name, v in metrics.items()})
    return run.id


def add_arena(store: ResultsStore, ratings: dict[str, tuple[float, float, float, int]]) -> str:
    with store.start_run("arena", None, {"bootstrap": 100, "seed": 0}, resume=False) as run:
        metrics = {}
        for model, (rating, lo, hi, battles) in ratings.items():
            metrics[f"bt_rating/{model}"] = Metric(rating, None, battles)
            metrics[f"bt_ci_low/{model}"] = Metric(lo)
            metrics[f"bt_ci_high/{model}"] = Metric(hi)
            metrics[f"battles/{model}"] = Metric(battles)
            run.add_sample(model, {"model": model, "rating": rating, "ci_low": lo, "ci_high": hi, "battles": battles,
                                   "wins": battles // 2, "losses": battles // 2, "ties": 0})
        run.log_metrics(metrics)
    return run.id


def add_finetune(store: ResultsStore, model: str, points: list[tuple[int, float, float]], **config) -> str:
    with store.start_run("finetune", model, {"epochs": 1, **config}) as run:
        for step, train_loss, val_loss in points:
            run.add_sample(f"step-{step:08d}", {"step": step, "epoch": 0, "tokens_seen": step * 100,
                                                "train_loss": train_loss, "val_loss": val_loss})
        run.log_metrics({"train_loss": points[-1][1], "val_loss": points[-1][2], "steps": points[-1][0]})
    return run.id
