from __future__ import annotations

import csv
import io
import json

import pytest

from evalkit.report import build_leaderboard, leaderboard_rows, to_markdown
from tests.report import builders as b


def test_one_row_per_model_with_values_n_runs_and_missing_none(small_store):
    ids = small_store.ids
    rows = {r["model"]: r for r in leaderboard_rows(small_store)}
    assert set(rows) == {"model-1", "model-2"}
    m1, m2 = rows["model-1"], rows["model-2"]
    assert (m1["judge_score"], m1["judge_score_stderr"], m1["judge_score_n"], m1["judge_score_run"]) == (71.36, 4.1, 11, ids["js1"])
    assert (m1["mmlu_acc"], m1["mmlu_acc_n"], m1["mmlu_stem"], m1["mmlu_social_sciences"]) == (0.3125, 80, 0.25, 0.3)
    assert (m1["bt_rating"], m1["bt_rating_ci_low"], m1["bt_rating_ci_high"], m1["bt_rating_n"]) == (1052.5, 1010.0, 1095.0, 40)
    assert m2["mmlu_acc"] is None and m2["mmlu_stem"] is None and m2["mmlu_acc_run"] is None  # missing is None, never 0
    assert m1["win_rate"] is None and m1["lc_win_rate"] is None
    # default order: judge score, best first
    assert [r["model"] for r in leaderboard_rows(small_store)] == ["model-1", "model-2"]


def test_best_marked_only_where_models_compete(small_store):
    board = build_leaderboard(small_store)
    assert board.best["judge_score"] == {"model-1"}
    assert board.best["bt_rating"] == {"model-1"}
    assert board.best["mmlu_acc"] == set()  # a single number is not "best" of anything
    assert board.warnings() == []


def test_different_judges_are_separate_setups_with_a_warning(store, eval_example):
    recs = eval_example[:8]  # 8 items: enough for b's lead over a to be significant (Wilcoxon p = 0.008)
    b.add_judge_score(store, "a", recs, "model 1 response", [10] * 8, judge="llama3", mean=10.0, stderr=1.0)
    b.add_judge_score(store, "b", recs, "model 2 response", [20] * 8, judge="llama3", mean=20.0, stderr=1.0)
    b.add_judge_score(store, "c", recs, "model 2 response", [90] * 8, judge="gpt-4", mean=90.0, stderr=1.0)
    board = build_leaderboard(store)
    rows = {r["model"]: r for r in board.rows}
    assert (rows["a"]["judge_score_setup"], rows["b"]["judge_score_setup"], rows["c"]["judge_score_setup"]) == ("A", "A", "B")
    # c's 90 is not ranked above a and b's reference setup, and is not "best" across setups
    assert [r["model"] for r in board.rows] == ["b", "a", "c"]
    assert board.best["judge_score"] == {"b"}
    assert len(board.warnings()) == 1 and "2 setups" in board.warnings()[0]
    setups = board.setups["judge-score"].setups
    assert [s.models for s in setups] == [["a", "b"], ["c"]]
    assert ("judge model", "gpt-4") in setups[1].description


def test_ties_share_best_but_a_column_of_equals_has_none(store, eval_example):
    recs = eval_example[:8]
    for model, score in (("a", 60), ("b", 60), ("c", 40)):
        b.add_judge_score(store, model, recs, "output", [score] * 8, mean=float(score), stderr=1.0)
    assert build_leaderboard(store).best["judge_score"] == {"a", "b"}
    b.add_judge_score(store, "c", recs, "output", [60] * 8, mean=60.0, stderr=1.0, template="tpl-1")  # same setup, newer
    assert build_leaderboard(store).best["judge_score"] == set()


def test_a_lead_within_the_noise_gets_no_star(store, eval_example):
    recs = eval_example[:3]  # three items: no paired test can be significant
    for model, score in (("a", 50), ("b", 40)):
        b.add_judge_score(store, model, recs, "output", [score] * 3, mean=float(score), stderr=1.0)
    board = build_leaderboard(store)
    assert board.best["judge_score"] == set()
    from evalkit.report.leaderboard import to_markdown

    assert "★" not in to_markdown(board)


def test_model_with_runs_in_two_setups_uses_the_reference_setup(store, eval_example):
    recs = eval_example[:5]
    b.add_judge_score(store, "a", recs, "model 1 response", [10] * 5, judge="llama3", mean=10.0, stderr=1.0)
    b.add_judge_score(store, "b", recs, "model 2 response", [20] * 5, judge="llama3", mean=20.0, stderr=1.0)
    b.add_judge_score(store, "a", recs, "model 1 response", [30] * 5, judge="gpt-4", mean=30.0, stderr=1.0)  # newer
    board = build_leaderboard(store)
    assert {r["model"]: r["judge_score"] for r in board.rows} == {"a": 10.0, "b": 20.0}
    assert board.warnings() == []


def test_different_items_or_few_shot_are_not_comparable(store, eval_example):
    b.add_judge_score(store, "a", eval_example[:5], "model 1 response", [10] * 5, mean=10.0, stderr=1.0)
    b.add_judge_score(store, "b", eval_example[5:10], "model 2 response", [20] * 5, mean=20.0, stderr=1.0)
    b.add_mmlu(store, "a", {"acc": (0.3, 0.01, 100)}, num_fewshot=0)
    b.add_mmlu(store, "b", {"acc": (0.4, 0.01, 100)}, num_fewshot=5)
    board = build_leaderboard(store)
    assert board.setups["judge-score"].mixed and board.setups["mmlu"].mixed
    assert len(board.warnings()) == 2


def test_unfinished_runs_only_on_request(store, eval_example):
    recs = eval_example[:3]
    b.add_judge_score(store, "done", recs, "model 1 response", [1, 2, 3], mean=2.0, stderr=0.5)
    run = store.start_run("judge-score", "partial", {"eval_set": "eval-example"})
    run.log_metric("score_mean", 50.0, 1.0, 1)
    run.finish("interrupted")
    assert [r["model"] for r in leaderboard_rows(store)] == ["done"]
    assert {r["model"] for r in leaderboard_rows(store, include_unfinished=True)} == {"done", "partial"}
    assert [r["model"] for r in leaderboard_rows(store, runs=[run.id[:-2]])] == ["partial"]


def test_pairwise_stderr_and_n_from_alpaca_eval_metrics(store):
    with store.start_run("judge-pairwise", "m", {"judge_model": "weighted_alpaca_eval_gpt4_turbo", "reference": "gpt4_1106_preview"}) as run:
        run.log_metrics({"win_rate": 12.5, "standard_error": 1.25, "n_total": 805, "length_controlled_winrate": 15.0})
    row = leaderboard_rows(store)[0]
    assert (row["win_rate"], row["win_rate_stderr"], row["win_rate_n"], row["lc_win_rate"]) == (12.5, 1.25, 805, 15.0)


@pytest.mark.parametrize("fmt", ["json", "csv", "md", "table"])
def test_leaderboard_command_formats(small_store, run_cli, fmt, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: cells are not folded
    rc, out, err = run_cli("leaderboard", "--format", fmt, store=small_store.path)
    assert rc == 0, err
    if fmt == "json":
        rows = json.loads(out)
        assert [r["model"] for r in rows] == ["model-1", "model-2"] and rows[0]["judge_score"] == 71.36
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows[0]["model"] == "model-1" and float(rows[0]["judge_score"]) == 71.36 and rows[1]["mmlu_acc"] == ""
    elif fmt == "md":
        assert out.splitlines()[0].startswith("| model | MMLU % |")
        assert "| model-1 | 31.2 ± 5.0 (n=80) |" in out and "★ 71.4 ± 4.1 (n=11)" in out
    else:
        assert "model-1" in out and "71.4 ± 4.1" in out
    rc, _, err = run_cli("leaderboard", "--format", fmt, "--out", tmp_path / f"lb.{fmt}", store=small_store.path)
    assert rc == 0 and (tmp_path / f"lb.{fmt}").read_text().count("model-2") >= 1


def test_markdown_escapes_untrusted_model_names(store, eval_example):
    b.add_judge_score(store, "evil|<b>name</b>", eval_example[:2], "model 1 response", [1, 2], mean=1.5, stderr=0.5)
    text = to_markdown(build_leaderboard(store))
    assert "evil\\|&lt;b&gt;name&lt;/b&gt;" in text and "<b>" not in text
