"""compare_models on runs of every kind written through the store API (README payloads)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evalkit.compare import A_BETTER, B_BETTER, NO_DIFFERENCE, REFUSED, compare_models, holm, items_differing
from evalkit.errors import EvalkitError, InputError
from tests.compare import builders

# MMLU, 20 questions: 1 only A right, 9 only B right, 6 both, 4 neither
MMLU_A = [1] + [0] * 9 + [1] * 6 + [0] * 4
MMLU_B = [0] + [1] * 9 + [1] * 6 + [0] * 4
SCORES_A = [50, 60, 70, 80, 40, 55, 65, 70, 30]
SCORES_B = [55, 70, 65, 80, 60, 70, 90, 100, None]  # last item unparsed for B
PREFS_A = [1, 1, 1.5, 2, 1, 1, 1.2, 1, 1, 1]
PREFS_B = [2, 2, 1.5, 2, 2, 1.8, 1.2, 2, 1, 2]
HEAD_TO_HEAD = [2, 2, 2, 1.5, 1, 2, 2, 2]  # judge run of B (generator_2) against A (generator_1)


def _three_kinds(store) -> dict[str, str]:
    questions = builders.mmlu_questions(20)
    records = builders.instructions(10)
    return {
        "mmlu_a": builders.mmlu_run(store, "A", questions, MMLU_A),
        "mmlu_b": builders.mmlu_run(store, "B", questions, MMLU_B),
        "score_a": builders.judge_score_run(store, "A", records, SCORES_A),
        "score_b": builders.judge_score_run(store, "B", records, SCORES_B),
        "pair_a": builders.pairwise_run(store, "A", records, PREFS_A),
        "pair_b": builders.pairwise_run(store, "B", records, PREFS_B),
    }


def _by_mode(rows):
    return {r["mode"]: r for r in rows}


def test_mmlu_judge_score_and_pairwise_by_hand(store):
    runs = _three_kinds(store)
    rows = compare_models(store, "A", "B", bootstrap=2000, seed=1)
    assert [r["mode"] for r in rows] == ["mmlu", "judge-score", "judge-pairwise"]  # no human runs: left out
    mode = _by_mode(rows)

    mmlu = mode["mmlu"]
    assert (mmlu["a"], mmlu["b"], mmlu["diff"], mmlu["n"]) == (0.35, 0.75, pytest.approx(0.4), 20)
    assert mmlu["p_value"] == pytest.approx(2 * (1 + 10) / 1024)  # exact McNemar, 1 vs 9 discordant
    assert mmlu["ci_low"] < 0.4 < mmlu["ci_high"]
    assert mmlu["runs"] == {"a": runs["mmlu_a"], "b": runs["mmlu_b"]}
    categories = {c["mode"]: c for c in mmlu["detail"]["categories"]}
    assert set(categories) == {"mmlu/stem", "mmlu/humanities", "mmlu/social_sciences", "mmlu/other"}
    stem = categories["mmlu/stem"]  # questions 0, 4, 8, 12, 16
    assert (stem["a"], stem["b"], stem["n"]) == (pytest.approx(2 / 5), pytest.approx(3 / 5), 5)
    assert sum(c["n"] for c in categories.values()) == 20

    score = mode["judge-score"]
    d = np.array(SCORES_B[:8], float) - SCORES_A[:8]  # the unparsed item is left out
    assert score["n"] == 8 and score["detail"]["excluded_unscored"] == 1
    assert score["a"] == pytest.approx(np.mean(SCORES_A[:8])) and score["b"] == pytest.approx(np.mean(SCORES_B[:8]))
    assert score["diff"] == pytest.approx(d.mean())
    assert score["p_value"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert (score["detail"]["share_b_higher"], score["detail"]["share_equal"], score["detail"]["share_b_lower"]) == (6 / 8, 1 / 8, 1 / 8)

    pairwise = mode["judge-pairwise"]
    assert (pairwise["a"], pairwise["b"]) == (pytest.approx(17.0), pytest.approx(75.0))
    assert pairwise["diff"] == pytest.approx(58.0)
    assert pairwise["p_value"] == pytest.approx(2 / 64)  # 6 instructions B preferred more, 0 A, 4 equal
    assert pairwise["detail"]["reference"] == "gpt4"

    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p_value"] for r in rows]))
    for row in rows:
        expected = B_BETTER if row["p_holm"] < 0.05 else NO_DIFFERENCE
        assert row["verdict"] == expected and row["refused"] is None
        assert row["detail"]["holm_family_size"] == 3


def test_seeded_resampling_is_reproducible(store):
    _three_kinds(store)
    first = compare_models(store, "A", "B", bootstrap=500, seed=3)
    assert compare_models(store, "A", "B", bootstrap=500, seed=3) == first
    other = compare_models(store, "A", "B", bootstrap=500, seed=4)
    assert [r["p_value"] for r in other] == [r["p_value"] for r in first]
    assert [(r["ci_low"], r["ci_high"]) for r in other] != [(r["ci_low"], r["ci_high"]) for r in first]
    # a mode's interval does not depend on which other modes are shown
    only = compare_models(store, "A", "B", metrics=["judge-score"], bootstrap=500, seed=3)
    assert (only[0]["ci_low"], only[0]["ci_high"]) == (first[1]["ci_low"], first[1]["ci_high"])


def test_swapping_models_mirrors_the_result(store):
    _three_kinds(store)
    ab = _by_mode(compare_models(store, "A", "B", bootstrap=200))
    ba = _by_mode(compare_models(store, "B", "A", bootstrap=200))
    for mode in ab:
        assert ba[mode]["diff"] == pytest.approx(-ab[mode]["diff"])
        assert ba[mode]["p_value"] == pytest.approx(ab[mode]["p_value"])
        assert {ab[mode]["verdict"], ba[mode]["verdict"]} in ({B_BETTER, A_BETTER}, {NO_DIFFERENCE})


def test_head_to_head_judge_run(store):
    records = builders.instructions(10)
    builders.pairwise_run(store, "A", records, PREFS_A)
    builders.pairwise_run(store, "B", records, PREFS_B)
    head = builders.pairwise_run(store, "B", records[:8], HEAD_TO_HEAD, reference="A")
    row = compare_models(store, "A", "B", metrics=["judge-pairwise"], bootstrap=1000)[0]
    # the head-to-head run is not mistaken for B's common-reference run
    assert row["diff"] == pytest.approx(58.0) and row["detail"]["reference"] == "gpt4"
    h2h = row["detail"]["head_to_head"]
    assert h2h["runs"] == {"head_to_head": head}
    assert h2h["b"] == pytest.approx(100 * 6.5 / 8) and h2h["a"] == pytest.approx(100 - 100 * 6.5 / 8)
    assert (h2h["detail"]["b_wins"], h2h["detail"]["a_wins"], h2h["detail"]["ties"]) == (6, 1, 1)
    assert h2h["p_value"] == pytest.approx(stats.binomtest(6, 7).pvalue)
    low, high = h2h["detail"]["b_win_rate_ci"]
    assert low < 81.25 < high
    # seen from A's side, the same run gives A's win rate
    mirrored = compare_models(store, "B", "A", metrics=["judge-pairwise"], bootstrap=1000)[0]["detail"]["head_to_head"]
    assert mirrored["b"] == pytest.approx(h2h["a"])


def test_head_to_head_alone_when_no_common_reference(store):
    records = builders.instructions(8)
    builders.pairwise_run(store, "B", records, HEAD_TO_HEAD, reference="A")
    row = compare_models(store, "A", "B", bootstrap=200)[0]
    assert row["mode"] == "judge-pairwise" and row["refused"] is None
    assert row["b"] == pytest.approx(81.25) and row["diff"] == pytest.approx(31.25)
    assert "not compared" in row["detail"]["common_reference"]


def test_only_finished_runs_and_the_latest_one_are_used(store):
    questions = builders.mmlu_questions(20)
    builders.mmlu_run(store, "A", questions, [0] * 20)
    latest_a = builders.mmlu_run(store, "A", questions, MMLU_A, lm_eval_version="0.4.13", note="rerun")
    b = builders.mmlu_run(store, "B", questions, MMLU_B)
    # a newer run that failed, and one still running, are ignored
    with pytest.raises(RuntimeError):
        with store.start_run("mmlu", "B", {**builders.MMLU_CONFIG, "note": "broken"}):
            raise RuntimeError("boom")
    store.start_run("mmlu", "B", {**builders.MMLU_CONFIG, "note": "running"})
    row = compare_models(store, "A", "B", bootstrap=100)[0]
    assert row["runs"] == {"a": latest_a, "b": b} and row["a"] == 0.35


def test_partial_overlap_compares_common_items_only(store):
    questions = builders.mmlu_questions(30)
    builders.mmlu_run(store, "A", questions[:20], MMLU_A)
    builders.mmlu_run(store, "B", questions[5:], [1] * 25)
    row = compare_models(store, "A", "B", bootstrap=100)[0]
    assert row["n"] == 15
    assert row["a"] == pytest.approx(np.mean(MMLU_A[5:20])) and row["b"] == 1.0
    assert "15 items both have (5 only in A, 10 only in B)" in row["detail"]["notes"][0]


@pytest.mark.parametrize(
    ("kind", "change", "reason"),
    [
        ("mmlu", {"num_fewshot": 5}, "num_fewshot differs (0 in"),
        ("mmlu", {"lm_eval_version": "0.4.2"}, "lm_eval_version differs"),
        ("mmlu", {"prompt_prefix": "Example: 1+1=2\n"}, "different prompts (different few-shot examples or template) on 20 of 20"),
        ("judge-score", {"judge_model": "qwen2.5:7b"}, "judge_model differs ('llama3' in"),
        ("judge-score", {"template_hash": "t2"}, "template_hash differs"),
        ("judge-score", {"judge_digest": "sha256:new"}, "judge_digest differs"),
        ("judge-score", {"eval_set": "alpaca-eval"}, "eval_set differs"),
        ("judge-pairwise", {"reference": "other-reference"}, "reference differs"),
        ("judge-pairwise", {"order": "random"}, "order differs"),
        ("judge-pairwise", {"verdict": "discrete"}, "verdict differs"),
        ("judge-score", {"options": {"seed": 1, "temperature": 0.7}}, "options differs"),
    ],
)
def test_non_comparable_runs_are_refused_with_the_reason(store, kind, change, reason):
    questions, records = builders.mmlu_questions(20), builders.instructions(10)
    build = {
        "mmlu": lambda model, cfg: builders.mmlu_run(store, model, questions, MMLU_A, **cfg),
        "judge-score": lambda model, cfg: builders.judge_score_run(store, model, records, SCORES_A, **cfg),
        "judge-pairwise": lambda model, cfg: builders.pairwise_run(store, model, records, PREFS_A, **cfg),
    }[kind]
    run_a, run_b = build("A", {}), build("B", change)
    # another mode that is comparable is still compared, and alone makes the Holm family
    other = "mmlu" if kind == "judge-score" else "judge-score"
    if other == "mmlu":
        builders.mmlu_run(store, "A", questions, MMLU_A)
        builders.mmlu_run(store, "B", questions, MMLU_B)
    else:
        builders.judge_score_run(store, "A", records, SCORES_A)
        builders.judge_score_run(store, "B", records, SCORES_B)
    rows = _by_mode(compare_models(store, "A", "B", metrics=[kind, other], bootstrap=100))
    row = rows[kind]
    assert row["verdict"] == REFUSED and reason in row["refused"]
    assert row["diff"] is None and row["p_value"] is None and row["p_holm"] is None and row["n"] == 0
    assert row["runs"] == {"a": run_a, "b": run_b}
    assert rows[other]["refused"] is None and rows[other]["p_holm"] == rows[other]["p_value"]
    assert rows[other]["detail"]["holm_family_size"] == 1  # refused modes are not in the family


def test_mmlu_data_compared_by_source_and_checksum_not_folder(store):
    questions = builders.mmlu_questions(20)
    builders.mmlu_run(store, "A", questions, MMLU_A, data={"source": "local", "folder": "/home/a/mmlu", "sha256": "c02f"})
    builders.mmlu_run(store, "B", questions, MMLU_B, data={"source": "local", "folder": "/tmp/copy", "sha256": "c02f"})
    assert compare_models(store, "A", "B", bootstrap=10)[0]["refused"] is None
    # a model whose only run used other data (another checksum, or the hub's copy) is refused
    builders.mmlu_run(store, "C", questions, MMLU_B, data={"source": "local", "folder": "/tmp/copy", "sha256": "ffff"})
    row = compare_models(store, "A", "C", bootstrap=10)[0]
    assert row["refused"].startswith("data differs ({'source': 'local', 'sha256': 'c02f'}")
    builders.mmlu_run(store, "D", questions, MMLU_B, data={"source": "cais/mmlu"})
    assert "data differs" in compare_models(store, "A", "D", bootstrap=10)[0]["refused"]
    # B's later run with other data does not replace its run in the setup A shares (as on the leaderboard)
    builders.mmlu_run(store, "B", questions, MMLU_B, data={"source": "local", "folder": "/tmp/copy", "sha256": "eeee"})
    assert compare_models(store, "A", "B", bootstrap=10)[0]["refused"] is None


def test_different_reference_outputs_and_disjoint_items_are_refused(store):
    records = builders.instructions(10)
    builders.pairwise_run(store, "A", records, PREFS_A)
    builders.pairwise_run(store, "B", records[:4], PREFS_B[:4], reference_text="another reference text")
    row = compare_models(store, "A", "B", bootstrap=100)[0]
    assert "different reference outputs on 4 of 4 common items (field 'output_1'" in row["refused"]

    builders.judge_score_run(store, "A", records[:5], SCORES_A[:5])
    builders.judge_score_run(store, "B", records[5:], SCORES_B[5:8] + [1, 2])
    row = compare_models(store, "A", "B", metrics=["judge-score"], bootstrap=100)[0]
    assert row["refused"].startswith("no items in common")


def test_runs_without_samples_are_refused(store):
    builders.mmlu_run(store, "A", builders.mmlu_questions(20), MMLU_A)
    with store.start_run("mmlu", "B", builders.MMLU_CONFIG) as run:  # aggregate numbers only
        run.log_metric("acc", 0.5, 0.1, 20)
    row = compare_models(store, "A", "B")[0]
    assert row["refused"] == (
        f"run {run.id} has no per-item samples (aggregate results only, e.g. an imported results file): "
        "a paired comparison needs the items"
    )


def test_a_mode_only_one_model_has_is_refused_and_modes_neither_has_are_left_out(store):
    builders.mmlu_run(store, "A", builders.mmlu_questions(20), MMLU_A)
    rows = compare_models(store, "A", "B")
    assert [r["mode"] for r in rows] == ["mmlu"]
    assert rows[0]["refused"] == "no finished mmlu run for 'B'"
    asked = compare_models(store, "A", "B", metrics=["mmlu", "judge-score", "human"])
    assert [r["refused"] for r in asked] == [
        "no finished mmlu run for 'B'",
        "no finished judge-score run for 'A' or 'B'",
        "no finished human runs in the store",
    ]
    assert all(r["verdict"] == REFUSED for r in asked)


def test_bad_requests_are_clear_errors(store):
    _three_kinds(store)
    with pytest.raises(EvalkitError, match="two different models"):
        compare_models(store, "A", "A")
    with pytest.raises(EvalkitError, match="unknown mode.*'bleu'"):
        compare_models(store, "A", "B", metrics=["bleu"])
    with pytest.raises(EvalkitError, match="alpha"):
        compare_models(store, "A", "B", alpha=1.5)
    with pytest.raises(EvalkitError, match="seed"):
        compare_models(store, "A", "B", seed=-1)
    assert [r["mode"] for r in compare_models(store, "A", "B", metrics="mmlu,mmlu", bootstrap=10)] == ["mmlu"]
    with pytest.raises(EvalkitError, match="no finished runs of 'X' or 'Y'"):
        compare_models(store, "X", "Y")


def test_malformed_preference_is_refused_by_the_store_naming_run_item_and_field(store):
    from evalkit.schema import SchemaError

    records = builders.instructions(3)
    builders.pairwise_run(store, "A", records, [1, 2, 1.5])
    with pytest.raises(SchemaError, match=r"run judge-pairwise-\S+, item '[0-9a-f]+': field 'preference'"):
        builders.pairwise_run(store, "B", records, [1, "much better", 1.5])
    bad = store.list_runs(model="B")[0]
    assert store.sample_count(bad.id) == 0 and bad.status == "failed"


def test_unparsed_preferences_are_left_out_and_zero_is_a_draw(store):
    records = builders.instructions(4)
    builders.pairwise_run(store, "A", records, [1, 2, None, 0])  # 0: AlpacaEval's old code for a draw
    builders.pairwise_run(store, "B", records, [2, 2, 2, 2])
    row = compare_models(store, "A", "B", bootstrap=100)[0]
    assert row["n"] == 3 and row["detail"]["excluded_unparsed"] == 1
    assert row["a"] == pytest.approx(100 * (0 + 1 + 0.5) / 3)


def test_items_differing(store):
    _three_kinds(store)
    mmlu = items_differing(store, "A", "B", mode="mmlu", limit=None)
    assert len(mmlu) == 10  # the discordant questions
    assert mmlu[0]["diff"] == -1 and mmlu[0]["item_id"] == "subject_0/0"  # largest |diff| first, item order
    assert all(r["gold"] and r["question"] for r in mmlu)
    scores = items_differing(store, "A", "B", mode="judge-score", limit=3)
    assert [r["diff"] for r in scores] == [30, 25, 20]
    assert scores[0]["response_b"] == "B answer 7" and scores[0]["reference"] == "reference 7"
    pairs = items_differing(store, "A", "B", mode="judge-pairwise")
    assert len(pairs) == 6 and pairs[0]["diff"] == 1
    with pytest.raises(EvalkitError, match="cannot be compared"):
        items_differing(store, "A", "C", mode="mmlu")
