"""compare, the leaderboard and the report share one comparability definition and one run
selection (evalkit.selection): they never disagree on what may be ranked together or on which
run stands for a model."""

from __future__ import annotations

import subprocess
from pathlib import Path

from evalkit.compare import compare_models
from evalkit.report.leaderboard import build_leaderboard
from evalkit.store import Metric
from tests.compare import builders

REPO = Path(__file__).resolve().parents[2]


def test_judge_runs_differing_only_in_temperature_are_refused_and_not_ranked_together(store):
    records = builders.instructions(12)
    run_a = builders.judge_score_run(store, "A", records, [40] * 12, options={"temperature": 0.0, "seed": 1, "num_ctx": 2048})
    run_b = builders.judge_score_run(store, "B", records, [90] * 12, options={"temperature": 0.8, "seed": 1, "num_ctx": 2048})
    row = compare_models(store, "A", "B")[0]
    assert row["mode"] == "judge-score" and row["refused"].startswith("options differs")
    board = build_leaderboard(store)
    assert board.provenance[run_a].comparability_key() != board.provenance[run_b].comparability_key()
    assert board.setups["judge-score"].mixed
    rows = {r["model"]: r for r in board.rows}
    assert {rows["A"]["judge_score_setup"], rows["B"]["judge_score_setup"]} == {"A", "B"}
    assert board.best["judge_score"] == set()  # no star across setups


def test_compare_and_leaderboard_pick_the_same_run_of_a_model(store):
    questions = builders.mmlu_questions(40)
    shared_a = builders.mmlu_run(store, "A", questions, [i % 2 == 0 for i in range(40)])
    builders.mmlu_run(store, "B", questions, [i % 3 == 0 for i in range(40)])
    # A's newest run has another few-shot setting: the leaderboard keeps A's run in the setup B shares
    builders.mmlu_run(store, "A", questions, [True] * 40, num_fewshot=5)
    board = build_leaderboard(store)
    picked = {r["model"]: r["mmlu_acc_run"] for r in board.rows}
    assert picked["A"] == shared_a
    row = compare_models(store, "A", "B", metrics=["mmlu"], bootstrap=100)[0]
    assert row["refused"] is None
    assert row["runs"] == {"a": picked["A"], "b": picked["B"]}


def test_no_second_comparability_table_in_the_code():
    out = subprocess.run(
        ["grep", "-rnE", "COMPARABLE_CONFIG|COMPARABLE_PAYLOAD|COMPARABILITY_FIELDS|CONFIG_KEYS|_SETTING_PARTS|latest_done_run", "evalkit"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert out.stdout == ""


def test_leaderboard_star_needs_a_significant_lead(store):
    # aggregates only (no stored items): the z-test on the standard errors decides
    for model, (value, se) in {"a": (0.300, 0.112), "b": (0.250, 0.100)}.items():
        with store.start_run("mmlu", model, {"eval_set": "mmlu"}) as run:
            run.log_metrics({"acc": Metric(value, se, 20)})
    board = build_leaderboard(store)
    assert board.best["mmlu_acc"] == set()
    with store.start_run("mmlu", "c", {"eval_set": "mmlu"}) as run:
        run.log_metrics({"acc": Metric(0.90, 0.02, 400)})
    assert build_leaderboard(store).best["mmlu_acc"] == {"c"}


def test_leaderboard_star_follows_compares_paired_test(store):
    records = builders.instructions(30)
    builders.judge_score_run(store, "A", records, [50] * 30)
    builders.judge_score_run(store, "B", records, [51] * 2 + [50] * 28)  # a lead of two items: noise
    board = build_leaderboard(store)
    assert board.best["judge_score"] == set()
    assert compare_models(store, "A", "B", bootstrap=100)[0]["verdict"].startswith("no detectable")
    builders.judge_score_run(store, "C", records, [80] * 30)
    board = build_leaderboard(store)
    assert board.best["judge_score"] == {"C"}
    assert compare_models(store, "B", "C", bootstrap=100)[0]["verdict"] == "B better"
