"""Training: outputs on disk and in the store, resume == uninterrupted, kill -9, DDP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore
from finetune import train
from finetune.checkpoint import latest_checkpoint
from tests.finetune.conftest import TINY_TRAINING

# dropout on, so that an exact resume also needs the RNG state restored
SETTINGS = TINY_TRAINING | {"dropout": 0.1}


def _weights(folder):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(folder).state_dict()


def _assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        if atol:
            assert torch.allclose(a[key], b[key], atol=atol), key
        else:
            assert torch.equal(a[key], b[key]), key


def _cli_args(settings: dict, data, out) -> list[str]:
    args = ["finetune", "--data", str(data), "--out", str(out), "--no-progress", "--format", "json"]
    flags = {"model": "--model", "init": "--init", "limit": "--limit", "batch_size": "--batch-size", "max_length": "--max-length",
             "epochs": "--epochs", "max_steps": "--max-steps", "eval_every": "--eval-every", "eval_batches": "--eval-batches",
             "save_every": "--save-every", "dropout": "--dropout", "precision": "--precision"}
    for key, flag in flags.items():
        args += [flag, str(settings[key])]
    return args


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, book_data_file):
    """An uninterrupted run, recorded in a store."""
    root = tmp_path_factory.mktemp("baseline")
    with ResultsStore(root / "evalkit.db") as store:
        result = train(data=book_data_file, out=root / "out", store=store, **SETTINGS)
        run = store.get_run(result.run_id)
        samples = list(store.samples(result.run_id))
    return {"result": result, "weights": _weights(root / "out"), "run": run, "samples": samples, "out": root / "out"}


def test_uninterrupted_run_writes_checkpoint_log_plot_and_store_run(baseline):
    result, out, run = baseline["result"], baseline["out"], baseline["run"]
    assert result.steps == 6 and result.tokens_seen > 0
    # a Hugging Face checkpoint that transformers loads offline, tokenizer included
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer("Hello, world")["input_ids"] == [15496, 11, 995]
    assert model.config.n_layer == 2
    meta = json.loads((out / "evalkit_finetune.json").read_text())
    assert meta["finished"] is True and meta["step"] == 6
    assert meta["hyperparameters"]["lr"] == 5e-5 and meta["hyperparameters"]["batch_size"] == 2
    assert meta["style"]["name"] == "alpaca" and meta["style"]["response"] == "\n\n### Response:\n{output}"
    assert [len(meta["split"][k]) for k in ("train", "test", "val")] == [25, 3, 2]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [3, 6]
    assert all(e["train_loss"] > 0 and e["val_loss"] > 0 for e in log)
    assert log[-1]["train_loss"] < log[0]["train_loss"]  # it learns
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert latest_checkpoint(out).name == "step-00000006"
    # the store: kind finetune, one sample per evaluation, README's metric names
    assert run.kind == "finetune" and run.status == "done" and run.model == "random:gpt2-tiny"
    assert [i for i, _ in baseline["samples"]] == ["step-00000003", "step-00000006"]
    assert baseline["samples"][-1][1] == {k: log[-1][k] for k in ("step", "epoch", "tokens_seen", "train_loss", "val_loss")}
    assert run.metrics["val_loss"].value == pytest.approx(log[-1]["val_loss"])
    assert run.metrics["steps"].value == 6 and run.metrics["tokens_seen"].value == result.tokens_seen


def test_resume_equals_uninterrupted(baseline, tmp_path, book_data_file):
    with ResultsStore(tmp_path / "evalkit.db") as store:
        first = train(data=book_data_file, out=tmp_path / "out", store=store, stop_after_steps=4, **SETTINGS)
        assert first.steps == 4 and store.get_run(first.run_id).status == "interrupted"
        with pytest.raises(EvalkitError, match="pass --resume to continue"):
            train(data=book_data_file, out=tmp_path / "out", store=store, **SETTINGS)
        with pytest.raises(EvalkitError, match=r"cannot resume with different settings \(lr\)"):
            train(data=book_data_file, out=tmp_path / "out", store=store, resume=True, **SETTINGS | {"lr": 1e-4})
        second = train(data=book_data_file, out=tmp_path / "out", store=store, resume=True, **SETTINGS)
        assert second.run_id == first.run_id and store.get_run(second.run_id).status == "done"
        assert list(store.samples(second.run_id)) == baseline["samples"]
    _assert_same_weights(_weights(tmp_path / "out"), baseline["weights"])
    assert (tmp_path / "out" / "train_log.jsonl").read_text() == (baseline["out"] / "train_log.jsonl").read_text()
    with pytest.raises(EvalkitError, match="already holds a finished fine-tune"):
        train(data=book_data_file, out=tmp_path / "out", **SETTINGS)


def _start_and_signal(store_path, out, settings, data, sig) -> tuple[int, str]:
    """Start `evalkit finetune` in a subprocess, send ``sig`` once checkpoint 2 exists."""
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "--store", str(store_path), *_cli_args(settings, data, out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            checkpoint = latest_checkpoint(out)
            if checkpoint is not None and int(checkpoint.name.split("-")[1]) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"training ended before the signal: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_kill_mid_training_then_resume(baseline, tmp_path, book_data_file, run_cli, sig):
    store_path, out = tmp_path / "evalkit.db", tmp_path / "out"
    settings = SETTINGS | {"save_every": 1}
    rc, stderr = _start_and_signal(store_path, out, settings, book_data_file, sig)
    stopped_at = int(latest_checkpoint(out).name.split("-")[1])
    assert 2 <= stopped_at < 6
    if sig == signal.SIGINT:  # Ctrl-C: finishes the step in flight, saves it, exits 130 saying how to go on
        assert rc == 130 and "interrupted" in stderr
        meta = json.loads((latest_checkpoint(out) / "evalkit_finetune.json").read_text())
        assert meta["finished"] is False and meta["step"] == stopped_at
    with ResultsStore(store_path) as store:
        (run,) = store.list_runs(kind="finetune")
        assert run.status == "interrupted"
    rc, stdout, stderr = run_cli(*_cli_args(settings, book_data_file, out), "--resume", store=store_path)
    assert rc == 0, stderr
    assert json.loads(stdout)["steps"] == 6
    _assert_same_weights(_weights(out), baseline["weights"])
    with ResultsStore(store_path) as store:
        (run,) = store.list_runs(kind="finetune")
        assert run.status == "done" and [i for i, _ in store.samples(run.id)] == [i for i, _ in baseline["samples"]]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ddp_two_cpu_processes_match_one_process(tmp_path, book_data_file, precision):
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun not on PATH")
    # no dropout: two processes draw differently
    settings = TINY_TRAINING | {"max_steps": 4, "save_every": 4, "precision": precision}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(  # started first: its imports overlap the single-process run below
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "evalkit", "--store", str(tmp_path / "db"),
         *_cli_args(settings | {"dropout": 0.0}, book_data_file, tmp_path / "ddp")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        single = train(data=book_data_file, out=tmp_path / "single", **settings)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    (summary,) = stdout.strip().splitlines()  # printed by rank 0 only
    assert json.loads(summary)["steps"] == 4 and json.loads(summary)["precision"] == precision
    # each process took half of every batch; gradients were averaged over all tokens of both
    # (bf16: each process rounds its half-batch's matmuls differently, so close, not equal: Adam
    # moves a weight by at most lr per step, so a near-zero gradient rounded to the other sign
    # can differ by up to 2 x lr x steps; the loss must still agree)
    tolerance = {"fp32": (1e-6, 1e-5), "bf16": (2 * settings["max_steps"] * 5e-5, 1e-3)}[precision]
    _assert_same_weights(_weights(tmp_path / "ddp"), _weights(single.out_dir), atol=tolerance[0])
    log_single = [json.loads(x) for x in (tmp_path / "single" / "train_log.jsonl").read_text().splitlines()]
    log_ddp = [json.loads(x) for x in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log_ddp] == [e["step"] for e in log_single]
    assert log_ddp[-1]["val_loss"] == pytest.approx(log_single[-1]["val_loss"], abs=tolerance[1])


def test_lm_eval_loads_the_checkpoint_unchanged(baseline):
    """`lm_eval --model hf --model_args pretrained=DIR`: the same log-likelihood as the weights give."""
    hf_module = pytest.importorskip("lm_eval.models.huggingface")
    from lm_eval.api.instance import Instance

    lm = hf_module.HFLM(pretrained=str(baseline["out"]), device="cpu", batch_size=1)
    context, continuation = "The capital of France is", " Paris"
    request = Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=0)
    ((loglikelihood, _),) = lm.loglikelihood([request])
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(baseline["out"]).eval()
    ids = [464, 3139, 286, 4881, 318, 6342]  # "The capital of France is" + " Paris" in GPT-2's BPE
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, -2], dim=-1)
    assert loglikelihood == pytest.approx(float(logprobs[ids[-1]]), abs=1e-4)


def test_gradient_accumulation_trains_the_same_model(tmp_path, book_data_file):
    # two micro-batches of one record = one batch of two: the loss is the mean over all their tokens
    settings = TINY_TRAINING | {"max_steps": 3, "save_every": 3}
    whole = train(data=book_data_file, out=tmp_path / "whole", **settings)
    accumulated = train(data=book_data_file, out=tmp_path / "accum", **settings | {"batch_size": 1, "grad_accum": 2})
    assert accumulated.steps == whole.steps == 3
    _assert_same_weights(_weights(tmp_path / "accum"), _weights(tmp_path / "whole"), atol=1e-6)


def test_final_model_is_written_once_and_the_run_is_timed(baseline):
    out, result = baseline["out"], baseline["result"]
    checkpoint = latest_checkpoint(out)
    # the model at OUT is the final checkpoint's files, hard-linked, not a second serialisation
    assert os.path.samefile(out / "model.safetensors", checkpoint / "model.safetensors")
    # no step follows the last one: its checkpoint carries no optimizer state
    state = torch.load(checkpoint / "training_state.pt", weights_only=True)
    assert state["step"] == 6 and state["optimizer"] is None and state["scheduler"] is not None
    t = result.timings
    assert 0 <= t["train_called"] <= t["data_ready"] <= t["model_ready"] <= t["ready_to_train"] <= t["first_step_began"] <= t["first_step"]
    assert t["first_step"] <= t["last_step"] <= t["evaluated"] <= t["returned"]
    assert t["startup_seconds"] == t["first_step_began"]
    assert t["first_step_seconds"] == pytest.approx(t["first_step"] - t["first_step_began"], abs=2e-3)
    assert t["shutdown_seconds"] == pytest.approx(t["returned"] - t["last_step"], abs=2e-3)
    assert t["shutdown_overhead_seconds"] == pytest.approx(t["shutdown_seconds"] - t["final_evaluation_seconds"], abs=2e-3)
    assert t["startup_cpu_seconds"] > 0 and result.last_step_loss > 0


def test_crash_while_finishing_resumes_from_the_final_checkpoint(baseline, tmp_path, book_data_file):
    first = train(data=book_data_file, out=tmp_path / "out", **SETTINGS)
    assert first.steps == 6
    # as if killed after the final checkpoint, before the model at OUT was complete
    for name in ("evalkit_finetune.json", "model.safetensors"):
        (tmp_path / "out" / name).unlink()
    again = train(data=book_data_file, out=tmp_path / "out", resume=True, **SETTINGS)
    assert again.steps == 6 and again.train_seconds == 0  # no step redone
    _assert_same_weights(_weights(tmp_path / "out"), baseline["weights"])
    assert json.loads((tmp_path / "out" / "evalkit_finetune.json").read_text())["finished"] is True


@pytest.mark.parametrize(("eval_every", "what", "at_step"), [(2, "training loss", 2), (1, "train-set loss", 1)])
def test_a_diverging_run_stops_with_a_clear_error_and_stores_no_nan(tmp_path, book_data_file, eval_every, what, at_step):
    # lr 1e9: the first update sends the weights to inf, so the next loss (or evaluation) is NaN
    settings = TINY_TRAINING | {"lr": 1e9, "max_steps": 4, "eval_every": eval_every, "save_every": 100}
    with ResultsStore(tmp_path / "evalkit.db") as store:
        with pytest.raises(EvalkitError, match=f"training diverged: the {what} is not a finite number at step {at_step} "
                                               r"\(--lr 1e\+09; start again with a lower one\)"):
            train(data=book_data_file, out=tmp_path / "out", store=store, **settings)
        (run,) = store.list_runs()
        assert run.status == "failed"
        for _, payload in store.samples(run.id):  # what was logged before is kept, and finite
            assert all(v is None or v == v for v in payload.values())
        assert all(m.value == m.value for m in store.get_run(run.id).metrics.values())
    log = tmp_path / "out" / "train_log.jsonl"
    assert "NaN" not in (log.read_text() if log.exists() else "")
