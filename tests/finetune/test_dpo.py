"""DPO: loss and gradients against an independent per-token computation, a run on the book's
preference data whose validation preference accuracy rises, exact resume, bad input refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore
from finetune.dpo import PairLogprobs, PreferenceDataset, collate_pairs, dpo_loss, load_preference_records, train_dpo
from finetune.model import random_model
from tests.conftest import shared_path

RECORDS = [
    {"instruction": "Fix the spelling.", "input": "freind", "chosen": "friend", "rejected": "Friend, obviously, get it together."},
    {"instruction": "Name a primary colour.", "input": "", "chosen": "Red.", "rejected": "Whatever, red I guess"},
    {"instruction": "Give the opposite of 'hot'.", "input": "", "chosen": "Cold.", "rejected": "It is cold, which you should know."},
]


@pytest.fixture(scope="module")
def preference_file():
    return shared_path("book-ch07", "instruction-data-with-preference.json")


def _independent_loss(policy, ref, tokenizer, beta):
    """The DPO paper's loss written out: one unpadded sequence at a time, log-probabilities
    summed by an explicit loop over the response tokens (response header, response and the
    end-of-text token 50256, as SFT trains), never over the prompt."""
    losses = []
    for record in RECORDS:
        prompt = (
            "Below is an instruction that describes a task. Write a response that appropriately completes the request."
            f"\n\n### Instruction:\n{record['instruction']}" + (f"\n\n### Input:\n{record['input']}" if record["input"] else "")
        )
        n_prompt = len(tokenizer.encode(prompt))
        ratios = []
        for side in ("chosen", "rejected"):
            ids = tokenizer.encode(prompt + f"\n\n### Response:\n{record[side]}") + [50256]
            tensor = torch.tensor([ids])
            policy_logits = policy(input_ids=tensor).logits[0]
            with torch.no_grad():
                ref_logits = ref(input_ids=tensor).logits[0]
            policy_lp, ref_lp = 0.0, 0.0
            for t in range(n_prompt, len(ids)):
                policy_lp = policy_lp + torch.log_softmax(policy_logits[t - 1], dim=-1)[ids[t]]
                ref_lp = ref_lp + torch.log_softmax(ref_logits[t - 1], dim=-1)[ids[t]]
            ratios.append(policy_lp - ref_lp)
        losses.append(-torch.log(torch.sigmoid(beta * (ratios[0] - ratios[1]))))
    return torch.stack(losses).mean()


def test_loss_and_gradients_match_an_independent_per_token_computation():
    from evalkit.assets import get_tokenizer

    tokenizer = get_tokenizer(None)
    beta = 0.5
    policy, ref = random_model("gpt2-tiny", seed=1).eval(), random_model("gpt2-tiny", seed=2).eval()
    with torch.no_grad():  # a policy away from its reference, so that the loss is not log 2
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.02)

    expected = _independent_loss(policy, ref, tokenizer, beta)
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in policy.named_parameters()}
    policy.zero_grad()

    dataset = PreferenceDataset(RECORDS, tokenizer, "alpaca")
    inputs, targets = collate_pairs([dataset[i] for i in range(len(dataset))], max_length=None)
    assert inputs.shape[0] == 6  # three chosen rows, then three rejected
    lp = PairLogprobs(policy)(inputs, targets)
    with torch.no_grad():
        ref_lp = PairLogprobs(ref)(inputs, targets)
    losses, chosen, rejected = dpo_loss(lp[:3], lp[3:], ref_lp[:3], ref_lp[3:], beta)
    loss = losses.mean()
    loss.backward()

    assert abs(expected.item() - 0.6931) > 1e-3
    assert torch.allclose(loss, expected, atol=1e-5), (loss.item(), expected.item())
    for name, p in policy.named_parameters():
        assert torch.allclose(p.grad, expected_grads[name], atol=1e-6, rtol=1e-4), name
    assert torch.allclose(chosen - rejected, beta * ((lp[:3] - ref_lp[:3]) - (lp[3:] - ref_lp[3:])).detach())


def test_a_short_run_on_the_books_preference_data_raises_validation_accuracy(tmp_path, preference_file):
    with ResultsStore(tmp_path / "evalkit.db") as store:
        result = train_dpo("gpt2-tiny", preference_file, tmp_path / "out", init="random", limit=300, batch_size=4,
                           max_length=64, max_steps=12, eval_every=6, eval_batches=4, lr=1e-3, progress=False, store=store)
        run = store.get_run(result.run_id)
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [0, 6, 12]
    # policy == reference at the start: every reward is 0, no pair is preferred, the loss is log 2
    assert log[0]["val_accuracy"] == 0.0 and log[0]["val_loss"] == pytest.approx(0.693147, abs=1e-5)
    assert log[-1]["val_accuracy"] > 0.5 and log[-1]["val_reward_margin"] > 0
    assert log[-1]["val_loss"] < log[0]["val_loss"]
    assert run.status == "done" and run.config["method"] == "dpo"
    assert run.metrics["val_preference_accuracy"].value == pytest.approx(log[-1]["val_accuracy"])
    meta = json.loads((tmp_path / "out" / "evalkit_finetune.json").read_text())
    assert meta["finished"] and len(meta["split"]["val"]) == 15


def test_interrupted_dpo_run_resumes_to_the_same_weights(tmp_path, preference_file):
    from transformers import GPT2LMHeadModel

    settings = dict(init="random", limit=60, batch_size=2, max_length=48, max_steps=4, eval_every=2, eval_batches=1,
                    save_every=2, lr=1e-3, dropout=0.1, progress=False)
    train_dpo("gpt2-tiny", preference_file, tmp_path / "a", **settings)
    first = train_dpo("gpt2-tiny", preference_file, tmp_path / "b", stop_after_steps=3, **settings)
    assert first.steps == 3
    second = train_dpo("gpt2-tiny", preference_file, tmp_path / "b", resume=True, **settings)
    assert second.steps == 4
    a = GPT2LMHeadModel.from_pretrained(tmp_path / "a").state_dict()
    b = GPT2LMHeadModel.from_pretrained(tmp_path / "b").state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_record_without_rejected_is_refused_naming_file_record_and_field(tmp_path):
    bad = tmp_path / "prefs.json"
    bad.write_text(json.dumps([RECORDS[0], {"instruction": "x", "chosen": "y"}]))
    with pytest.raises(EvalkitError, match=r"prefs\.json.*1.*rejected"):
        load_preference_records(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "--store", str(tmp_path / "s.db"), "finetune", "--method", "dpo", "--model", "gpt2-tiny",
         "--init", "random", "--data", str(bad), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "rejected" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    with ResultsStore(tmp_path / "s.db") as store:
        assert store.list_runs() == []


def test_ddp_two_cpu_processes_match_one_process(tmp_path, preference_file):
    import os
    import shutil

    from transformers import GPT2LMHeadModel

    torchrun = shutil.which("torchrun") or pytest.skip("torchrun not on PATH")
    settings = dict(init="random", limit=60, batch_size=4, max_length=48, max_steps=3, eval_every=3, eval_batches=1,
                    save_every=3, lr=1e-3, weight_decay=0.1, epochs=2, progress=False)  # the CLI's defaults for the rest
    proc = subprocess.Popen(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "evalkit", "--store", str(tmp_path / "db"), "finetune",
         "--format", "json", "--method", "dpo", "--model", "gpt2-tiny", "--init", "random", "--data", str(preference_file), "--limit", "60",
         "--batch-size", "4", "--max-length", "48", "--max-steps", "3", "--eval-every", "3", "--eval-batches", "1",
         "--save-every", "3", "--lr", "1e-3", "--no-progress", "--out", str(tmp_path / "ddp")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        single = train_dpo("gpt2-tiny", preference_file, tmp_path / "single", **settings)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    (summary,) = stdout.strip().splitlines()  # rank 0 only
    assert json.loads(summary)["steps"] == 3 and json.loads(summary)["method"] == "dpo"
    # each process took half of every batch; the loss is the mean over the pairs of both. Adam at
    # lr 1e-3 turns float-rounding differences of near-zero gradients into up to ~1e-4 of weight.
    a = GPT2LMHeadModel.from_pretrained(tmp_path / "ddp").state_dict()
    b = GPT2LMHeadModel.from_pretrained(single.out_dir).state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=2e-4), key
    log_ddp = [json.loads(x) for x in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log_ddp] == [e["step"] for e in single.log] == [0, 3]
    for key in ("val_loss", "val_reward_margin", "train_loss"):
        assert log_ddp[-1][key] == pytest.approx(single.log[-1][key], abs=1e-5), key
    assert log_ddp[-1]["val_accuracy"] == single.log[-1]["val_accuracy"]
