"""Whole runs on a small real-data folder: lm-eval's size-weighted aggregation, the table,
and resuming an interrupted run from lm-eval's request cache."""

from __future__ import annotations

import math

import pytest

from evalkit.mmlu import run_mmlu
from evalkit.mmlu import progress as progress_module
from evalkit.store import ResultsStore
from tests.mmlu.conftest import N_REQUESTS, SMALL_BATCH_SIZE, SMALL_TEST


def test_groups_are_weighted_by_size_as_lm_eval_aggregates_mmlu(small_run):
    from lm_eval.api.metrics import pooled_sample_stderr

    result, metrics, _ = small_run
    subjects = [metrics[f"acc/{s}"] for s in SMALL_TEST]
    assert [m.n for m in subjects] == list(SMALL_TEST.values())
    weighted = sum(m.value * m.n for m in subjects) / sum(m.n for m in subjects)
    unweighted = sum(m.value for m in subjects) / len(subjects)
    assert not math.isclose(weighted, unweighted)  # so the check below tells the two apart
    assert metrics["acc"].value == pytest.approx(weighted, abs=1e-15)
    assert metrics["acc"].n == sum(SMALL_TEST.values())
    assert metrics["acc"].stderr == pytest.approx(pooled_sample_stderr([m.stderr for m in subjects], [m.n for m in subjects]), abs=1e-15)
    stem = [metrics["acc/abstract_algebra"], metrics["acc/anatomy"]]
    assert metrics["acc/stem"].value == pytest.approx((stem[0].value * 3 + stem[1].value * 7) / 10, abs=1e-15)
    assert metrics["acc/other"].value == metrics["acc/marketing"].value
    assert set(metrics) == {"acc", "acc/stem", "acc/other", *(f"acc/{s}" for s in SMALL_TEST)}
    assert result.requests == N_REQUESTS


def test_cli_prints_the_table_and_stores_the_run(run_cli, tiny_gpt2, small_mmlu, tmp_path):
    # no --device: cuda when available, else cpu (a CPU-only torch must not be asked for CUDA)
    rc, out, err = run_cli("mmlu", "--model", tiny_gpt2, "--data", small_mmlu, "--limit", "2", "--batch-size", "4")
    assert rc == 0, err
    lines = out.splitlines()
    assert "MMLU: " in out and "level" in out and "stderr" in out
    body = [line for line in lines if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == ["overall", "category", "category", "subject", "subject", "subject"]
    with ResultsStore(tmp_path / "evalkit.db") as store:
        (run,) = store.list_runs(kind="mmlu")
        assert run.status == "done" and store.sample_count(run.id) == 6
        assert f"stored run {run.id}" in err
    assert "MMLU" in err and f"{N_REQUESTS // 15 * 6}/{N_REQUESTS // 15 * 6} requests" in err  # rich progress bar


def test_interrupted_run_resumes_from_lm_evals_request_cache(tmp_path, tiny_gpt2, small_mmlu, small_run, monkeypatch):
    answered = []
    interrupt = [True]
    real_add_partial = progress_module._ChainedHook.add_partial

    def interrupt_after_20(self, attr, req, res):
        real_add_partial(self, attr, req, res)  # lm-eval's cache has it before the interruption
        answered.append(req)
        if interrupt[0] and len(answered) == 20:
            interrupt[0] = False
            raise KeyboardInterrupt

    monkeypatch.setattr(progress_module._ChainedHook, "add_partial", interrupt_after_20)
    cache = tmp_path / "lm-eval-cache"
    with ResultsStore(tmp_path / "evalkit.db") as store:
        with pytest.raises(KeyboardInterrupt):
            run_mmlu(store, tiny_gpt2, data=small_mmlu, batch_size=SMALL_BATCH_SIZE, device="cpu", cache=cache, progress=False)
        (first,) = store.list_runs(kind="mmlu")
        assert first.status == "interrupted" and store.sample_count(first.id) == 0
        assert (cache / "lm-eval-requests_rank0.db").is_file()

        answered.clear()
        result = run_mmlu(store, tiny_gpt2, data=small_mmlu, batch_size=SMALL_BATCH_SIZE, device="cpu", cache=cache, progress=False)
        assert len(answered) == N_REQUESTS - 20  # the model was asked only what the cache lacked
        assert result.run_id == first.id  # the same run, resumed
        (again,) = store.list_runs(kind="mmlu")
        assert again.status == "done" and store.sample_count(result.run_id) == sum(SMALL_TEST.values())
        _, uninterrupted, _ = small_run
        assert {k: m.value for k, m in again.metrics.items()} == {k: m.value for k, m in uninterrupted.items()}

        answered.clear()
        run_mmlu(store, tiny_gpt2, data=small_mmlu, batch_size=SMALL_BATCH_SIZE, device="cpu", cache=cache, progress=False)
        assert answered == []  # everything from the cache


def test_bf16_run_records_its_precision_and_changes_the_loglikelihoods(tmp_path, tiny_gpt2, small_mmlu, small_run):
    _, _, fp32_samples = small_run
    with ResultsStore(tmp_path / "evalkit.db") as store:
        result = run_mmlu(store, tiny_gpt2, data=small_mmlu, subjects=["abstract_algebra"], batch_size=SMALL_BATCH_SIZE,
                          device="cpu", precision="bf16", progress=False)
        config = store.get_run(result.run_id).config
        samples = dict(store.samples(result.run_id))
    assert config["precision"] == "bf16" and "dtype" not in config["model_args"]
    ours = [ll for i in sorted(samples) for ll in samples[i]["loglikelihoods"]]
    fp32 = [ll for i in sorted(samples) for ll in fp32_samples[i]["loglikelihoods"]]
    assert ours != fp32 and ours == pytest.approx(fp32, abs=0.5)  # the weights really were bf16


def test_precision_and_a_dtype_model_arg():
    from evalkit.errors import EvalkitError
    from evalkit.mmlu.runner import precision_model_args

    assert precision_model_args("fp32", {}) == ("fp32", {})
    assert precision_model_args("bf16", {}) == ("bf16", {"dtype": "bfloat16"})
    assert precision_model_args("fp32", {"dtype": "bfloat16"}) == ("bf16", {})  # recorded as what it means
    with pytest.raises(EvalkitError, match="either --precision or dtype"):
        precision_model_args("bf16", {"dtype": "float32"})
