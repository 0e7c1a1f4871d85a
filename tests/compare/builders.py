"""Runs of every kind written through the store API, with the README's sample payloads.

Each builder writes what the mode's own command stores (kind, config keys that make numbers
comparable, one payload per item), so compare sees exactly what real runs give it.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.items import instruction_item_id, mmlu_item_id
from evalkit.store import ResultsStore

LETTERS = "ABCD"
MMLU_CONFIG = {"num_fewshot": 0, "lm_eval_version": "0.4.13", "data": None, "subjects": None}
JUDGE_CONFIG = {"eval_set": "book-test", "judge_model": "llama3", "judge_digest": "sha256:abc", "template_hash": "t1"}


def mmlu_run(store: ResultsStore, model: str, questions: list[dict], correct: list[bool], **config) -> str:
    """``questions``: dicts with subject, category, doc_id, question, choices, gold (letter)."""
    with store.start_run("mmlu", model, {**MMLU_CONFIG, **config}) as run:
        samples = []
        for q, ok in zip(questions, correct):
            wrong = LETTERS[(LETTERS.index(q["gold"]) + 1) % 4]
            pred = q["gold"] if ok else wrong
            samples.append((mmlu_item_id(q["subject"], q["doc_id"]), {
                "subject": q["subject"], "category": q["category"], "doc_id": q["doc_id"],
                "question": q["question"], "choices": q["choices"],
                "prompt": config.get("prompt_prefix", "") + q["question"] + "\nAnswer:",
                "loglikelihoods": [-1.0 if letter == pred else -2.0 for letter in LETTERS],
                "pred": pred, "gold": q["gold"], "correct": bool(ok),
            }))
        run.add_samples(samples)
        run.log_metric("acc", sum(correct) / len(correct), None, len(correct))
    return run.id


def mmlu_questions(n: int, categories=("stem", "humanities", "social_sciences", "other")) -> list[dict]:
    return [
        {"subject": f"subject_{i % 8}", "category": categories[i % len(categories)], "doc_id": i,
         "question": f"Question {i}?", "choices": ["w", "x", "y", "z"], "gold": LETTERS[i % 4]}
        for i in range(n)
    ]


def instructions(n: int) -> list[dict]:
    return [{"instruction": f"Instruction {i}", "input": "" if i % 2 else f"input {i}", "output": f"reference {i}"} for i in range(n)]


def judge_score_run(store: ResultsStore, model: str, records: list[dict], scores: list[int | None], **config) -> str:
    with store.start_run("judge-score", model, {**JUDGE_CONFIG, **config}) as run:
        samples = [
            (instruction_item_id(r["instruction"], r["input"]), {
                "instruction": r["instruction"], "input": r["input"], "reference": r["output"],
                "response": f"{model} answer {i}", "score": s, "status": "ok" if s is not None else "unparsed",
                "raw": [str(s)],
            })
            for i, (r, s) in enumerate(zip(records, scores))
        ]
        run.add_samples(samples)
        valid = [s for s in scores if s is not None]
        run.log_metric("score_mean", sum(valid) / len(valid), None, len(valid))
    return run.id


def pairwise_run(
    store: ResultsStore,
    model: str,
    records: list[dict],
    preferences: list[float | None],
    *,
    reference: str = "gpt4",
    reference_text: str = "reference says",
    **config,
) -> str:
    """A judge-pairwise run of ``model`` (generator_2) against ``reference`` (generator_1)."""
    with store.start_run("judge-pairwise", model, {**JUDGE_CONFIG, "reference": reference, "order": "swap", **config}) as run:
        run.add_samples(
            (instruction_item_id(r["instruction"], r["input"]), {
                "instruction": r["instruction"], "input": r["input"], "output_1": f"{reference_text} {i}",
                "generator_1": reference, "output_2": f"{model} says {i}", "generator_2": model,
                "preference": p, "status": "ok" if p is not None else "unparsed", "raw_completion": None,
            })
            for i, (r, p) in enumerate(zip(records, preferences))
        )
    return run.id


def annotations_run(store: ResultsStore, path: Path) -> tuple[str, str]:
    """An AlpacaEval annotations file as a judge-pairwise run (README payload); (run id, model)."""
    records = json.loads(Path(path).read_text())
    model = records[0]["generator_2"]
    config = {"eval_set": "alpaca-eval", "judge_model": records[0]["annotator"], "reference": records[0]["generator_1"]}
    with store.start_run("judge-pairwise", model, config) as run:
        run.add_samples(
            (instruction_item_id(r["instruction"], r.get("input", "")), {
                "instruction": r["instruction"], "input": r.get("input", ""), "output_1": r["output_1"],
                "generator_1": r["generator_1"], "output_2": r["output_2"], "generator_2": r["generator_2"],
                "preference": r["preference"], "status": "ok", "raw_completion": r.get("raw_completion"),
            })
            for r in records
        )
    return run.id, model


def human_run(store: ResultsStore, votes: list[tuple[str, str, str]], *, rater: str = "r1", bundle: str = "b1") -> str:
    """``votes``: (model_a, model_b, outcome) with outcome in a, b, tie, both_bad."""
    with store.start_run("human", None, {"bundle": bundle}) as run:
        run.add_samples(
            (f"{bundle}-{i:05d}/{rater}", {
                "pair_id": f"{bundle}-{i:05d}", "rater": rater, "outcome": outcome, "model_a": ma, "model_b": mb,
                "instruction": f"Instruction {i}", "input": "", "response_a": "x", "response_b": "y",
                "comment": "", "timestamp": "2026-01-01T00:00:00Z", "seconds": 3.0,
            })
            for i, (ma, mb, outcome) in enumerate(votes)
        )
        run.log_metrics({"n_votes": len(votes), "n_raters": 1})
    return run.id
