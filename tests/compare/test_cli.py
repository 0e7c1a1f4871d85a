"""`evalkit compare`: the JSON shape is a contract; table and CSV for people and spreadsheets."""

from __future__ import annotations

import csv
import io
import json

from tests.compare import builders
from tests.compare.test_compare_models import MMLU_A, MMLU_B, PREFS_A, PREFS_B, SCORES_A, SCORES_B

CONTRACT = ["mode", "a", "b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "n", "verdict"]


def _fill(path):
    from evalkit.store import ResultsStore

    with ResultsStore(path) as store:
        questions, records = builders.mmlu_questions(20), builders.instructions(10)
        builders.mmlu_run(store, "ckpt-a", questions, MMLU_A)
        builders.mmlu_run(store, "ckpt-b", questions, MMLU_B)
        builders.judge_score_run(store, "ckpt-a", records, SCORES_A)
        builders.judge_score_run(store, "ckpt-b", records, SCORES_B, judge_model="other-judge")
        builders.pairwise_run(store, "ckpt-a", records, PREFS_A)
        builders.pairwise_run(store, "ckpt-b", records, PREFS_B)


def test_json_is_one_object_per_mode_with_the_contract_keys_first(tmp_path, run_cli):
    _fill(tmp_path / "evalkit.db")
    rc, out, err = run_cli("compare", "ckpt-a", "ckpt-b", "--format", "json", "--bootstrap", "500", "--seed", "2")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["mode"] for r in rows] == ["mmlu", "judge-score", "judge-pairwise"]
    for row in rows:
        assert list(row)[: len(CONTRACT)] == CONTRACT
    mmlu, score, pairwise = rows
    assert (mmlu["a"], mmlu["b"], mmlu["n"]) == (0.35, 0.75, 20)
    assert mmlu["p_holm"] == min(1.0, mmlu["p_value"] * 2)  # the larger of the two tested p-values
    assert score["verdict"] == "refused" and "judge_model differs" in score["refused"]
    assert pairwise["verdict"] in ("B better", "no detectable difference at alpha")
    again = json.loads(run_cli("compare", "ckpt-a", "ckpt-b", "--format", "json", "--bootstrap", "500", "--seed", "2")[1])
    assert again == rows


def test_metrics_alpha_and_csv(tmp_path, run_cli):
    _fill(tmp_path / "evalkit.db")
    rc, out, _ = run_cli("compare", "ckpt-a", "ckpt-b", "--metrics", "judge-pairwise,mmlu", "--alpha", "0.1",
                         "--bootstrap", "200", "--format", "csv")
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[: len(CONTRACT)] == CONTRACT
    assert [r["mode"] for r in rows] == ["judge-pairwise", "mmlu"]
    # alpha 0.1: Holm over two tests; McNemar p = 0.0215 -> 0.043, sign test 0.03125 -> 0.0625: both below 0.1
    assert [r["verdict"] for r in rows] == ["B better", "B better"]
    assert all(r["alpha"] == "0.1" for r in rows)


def test_table_shows_verdicts_notes_and_refusals(tmp_path, run_cli):
    _fill(tmp_path / "evalkit.db")
    rc, out, _ = run_cli("compare", "ckpt-a", "ckpt-b", "--bootstrap", "200")
    assert rc == 0
    assert "A = ckpt-a" in out and "B = ckpt-b" in out
    assert "mmlu/stem" in out and "Holm-adjusted" in out and "several tests were run" in out
    assert "refused: judge_model differs" in out
    assert "exact McNemar" in out


def test_table_of_a_head_to_head_only_comparison_says_so(tmp_path, run_cli):
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path / "evalkit.db") as store:
        builders.pairwise_run(store, "ckpt-b", builders.instructions(8), [2, 2, 2, 1.5, 1, 2, 2, 2], reference="ckpt-a")
    rc, out, _ = run_cli("compare", "ckpt-a", "ckpt-b", "--bootstrap", "100")
    assert rc == 0
    assert "judge-pairwise: head-to-head judge run only; against a common reference: not compared: no finished" in out
    assert "the p-value of the one test shown (nothing to adjust)" in out


def test_errors_exit_2_with_one_line(tmp_path, run_cli):
    _fill(tmp_path / "evalkit.db")
    rc, out, err = run_cli("compare", "ckpt-a", "ckpt-a")
    assert rc == 2 and out == "" and err.strip() == "evalkit: error: compare needs two different models (got 'ckpt-a' twice)"
    rc, _, err = run_cli("compare", "ckpt-a", "ckpt-b", "--metrics", "mmlu,elo")
    assert rc == 2 and "unknown mode(s) 'elo'" in err
    rc, _, err = run_cli("compare", "nobody", "ckpt-b", "--metrics", "mmlu", "--format", "json")
    assert rc == 0  # a mode asked for is shown, refused with the reason
