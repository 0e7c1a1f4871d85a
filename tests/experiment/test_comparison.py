"""The plan's comparison on hand-built MMLU runs: one Holm family across variants and modes,
the seed spread beside the paired test, exact numbers."""

from __future__ import annotations

import statistics

import pytest
from scipy.stats import binomtest

from evalkit.experiment.comparison import compare_variants
from evalkit.experiment.plan import Plan
from evalkit.store import ResultsStore

CONFIG = {"eval_set": "mmlu", "num_fewshot": 0, "template_hash": "t", "lm_eval_version": "x"}


def _mmlu_run(store, model, correct):
    with store.start_run("mmlu", model, CONFIG, resume=False) as run:
        run.add_samples((f"q{i}", {"correct": c, "category": "stem", "prompt": f"p{i}", "gold": "A"}) for i, c in enumerate(correct))
        run.log_metrics({"acc": sum(correct) / len(correct)})


def _plan(**extra) -> Plan:
    return Plan.model_validate({"name": "t", "base": {"model": "gpt2"}, "baseline": "base",
                                "variants": {"base": {}, "better": {}, "same": {}}, "compare": {"bootstrap": 200}, **extra})


def test_every_variant_against_the_baseline_with_holm_across_variants(tmp_path):
    base = [False] * 20
    better = [True] * 12 + [False] * 8  # 12 discordant pairs, all for the variant
    same = [True] * 1 + [False] * 19  # 1 discordant pair
    with ResultsStore(tmp_path / "s.db") as store:
        _mmlu_run(store, "t-base", base)
        _mmlu_run(store, "t-better", better)
        _mmlu_run(store, "t-same", same)
        rows, notes = compare_variants(store, _plan())
    assert notes == []
    by_variant = {r["variant"]: r for r in rows}
    assert set(by_variant) == {"better", "same"} and all(r["mode"] == "mmlu" for r in rows)
    p_better, p_same = binomtest(12, 12).pvalue, binomtest(1, 1).pvalue  # exact McNemar = binomial on discordant pairs
    assert by_variant["better"]["p_value"] == pytest.approx(p_better)
    # Holm over the two tests: the smaller p times 2, the larger times 1 (kept monotone)
    assert by_variant["better"]["p_holm"] == pytest.approx(2 * p_better)
    assert by_variant["same"]["p_holm"] == pytest.approx(max(p_same, 2 * p_better))
    assert by_variant["better"]["diff"] == pytest.approx(0.6) and by_variant["better"]["value"] == pytest.approx(0.6)
    assert by_variant["better"]["verdict"] == "variant better" and by_variant["same"]["verdict"] == "no difference"
    assert 0 < by_variant["better"]["ci_low"] <= 0.6 <= by_variant["better"]["ci_high"]
    assert by_variant["better"]["detail"]["holm_family_size"] == 2
    assert by_variant["better"]["seed_diffs"] == [] and by_variant["better"]["seed_sd"] is None


def test_several_seeds_report_the_difference_per_seed_and_its_spread(tmp_path):
    plan = _plan(seeds=[1, 2, 3])
    with ResultsStore(tmp_path / "s.db") as store:
        for seed, (n_base, n_better) in zip((1, 2, 3), ((2, 14), (4, 10), (3, 3))):
            _mmlu_run(store, f"t-base-s{seed}", [True] * n_base + [False] * (20 - n_base))
            _mmlu_run(store, f"t-better-s{seed}", [True] * n_better + [False] * (20 - n_better))
            _mmlu_run(store, f"t-same-s{seed}", [True] * n_base + [False] * (20 - n_base))
        rows, _ = compare_variants(store, plan)
    better = next(r for r in rows if r["variant"] == "better")
    assert better["model"] == "t-better-s1" and better["baseline"] == "t-base-s1"  # the paired test: first seeds
    assert better["seed_diffs"] == pytest.approx([0.6, 0.3, 0.0])
    assert better["seed_sd"] == pytest.approx(statistics.stdev([0.6, 0.3, 0.0]))
    same = next(r for r in rows if r["variant"] == "same")
    assert same["seed_diffs"] == pytest.approx([0.0, 0.0, 0.0]) and same["seed_sd"] == 0.0


def test_a_variant_without_evaluations_is_noted_not_invented(tmp_path):
    with ResultsStore(tmp_path / "s.db") as store:
        rows, notes = compare_variants(store, _plan())
    assert rows == []
    assert notes[0].startswith("better: nothing to compare yet")
