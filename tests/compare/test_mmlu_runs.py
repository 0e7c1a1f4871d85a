"""Real MMLU runs (evalkit.mmlu through lm-eval) of two tiny random GPT-2s compared end to end,
on a small folder of real MMLU questions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from evalkit.compare import compare_models
from tests.conftest import build_tiny_gpt2, shared_path

import evalkit.mmlu as mmlu  # noqa: E402

SUBJECTS = {"abstract_algebra": 10, "marketing": 10}  # two categories, kept small: lm-eval runs twice


@pytest.fixture
def small_mmlu(tmp_path):
    wanted, out = dict(SUBJECTS), []
    with shared_path("mmlu", "test.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if wanted.get(record["subject"], 0) > 0:
                wanted[record["subject"]] -= 1
                out.append(record)
    folder = tmp_path / "mmlu"
    folder.mkdir()
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return folder


def test_two_real_mmlu_runs(store, tmp_path, monkeypatch, gpt2_tokenizer_dir, small_mmlu):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))  # lm-eval task folders
    models = [build_tiny_gpt2(tmp_path / name, gpt2_tokenizer_dir, seed=seed) for seed, name in enumerate(("tiny-a", "tiny-b"))]
    runs = [mmlu.run_mmlu(store, m, data=small_mmlu, batch_size=8, device="cpu", progress=False).run_id for m in models]
    records = [store.get_run(r) for r in runs]
    name_a, name_b = (r.model for r in records)
    row = compare_models(store, name_a, name_b, bootstrap=1000)[0]
    assert row["mode"] == "mmlu" and row["refused"] is None, row["refused"]
    assert row["runs"] == {"a": runs[0], "b": runs[1]}
    assert row["n"] == sum(SUBJECTS.values())
    assert row["a"] == pytest.approx(records[0].metrics["acc"].value)
    assert row["b"] == pytest.approx(records[1].metrics["acc"].value)
    correct = [dict((i, p["correct"]) for i, p in store.samples(r)) for r in runs]
    a = np.array([correct[0][i] for i in correct[0]])
    b = np.array([correct[1][i] for i in correct[0]])
    discordant = int(np.sum(a != b))
    expected = 1.0 if discordant == 0 else stats.binomtest(int(np.sum(b & ~a)), discordant).pvalue
    assert row["p_value"] == pytest.approx(expected)
    categories = {c["mode"]: c for c in row["detail"]["categories"]}
    assert set(categories) == {"mmlu/stem", "mmlu/other"}
    for category, c in categories.items():
        assert c["a"] == pytest.approx(records[0].metrics[f"acc/{category.split('/')[1]}"].value)
