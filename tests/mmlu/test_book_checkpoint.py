"""`--model book.pth`: a checkpoint saved by the book's code, converted by finetune's importer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evalkit.mmlu import resolve_model, run_mmlu
from evalkit.store import ResultsStore
from tests.mmlu.conftest import SMALL_BATCH_SIZE, SMALL_TEST

import finetune.book_import as finetune_import  # noqa: E402
TINY_BOOK = {"emb_dim": 64, "n_layers": 2, "n_heads": 2}  # tests/conftest.py TINY_GPT2 in the book's terms


def _book_state_dict(hf_dir):
    """The tiny GPT-2's weights under the book's GPTModel names (inverse of load_weights_into_gpt)."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(hf_dir).state_dict()
    sd = {"tok_emb.weight": hf["transformer.wte.weight"], "pos_emb.weight": hf["transformer.wpe.weight"]}
    for i in range(TINY_BOOK["n_layers"]):
        h, b = f"transformer.h.{i}.", f"trf_blocks.{i}."
        for name, w, bias in zip(
            ("W_query", "W_key", "W_value"),
            hf[h + "attn.c_attn.weight"].chunk(3, dim=1),
            hf[h + "attn.c_attn.bias"].chunk(3),
        ):
            sd[f"{b}att.{name}.weight"], sd[f"{b}att.{name}.bias"] = w.T.contiguous(), bias.clone()
        sd[f"{b}att.out_proj.weight"], sd[f"{b}att.out_proj.bias"] = hf[h + "attn.c_proj.weight"].T.contiguous(), hf[h + "attn.c_proj.bias"]
        sd[f"{b}ff.layers.0.weight"], sd[f"{b}ff.layers.0.bias"] = hf[h + "mlp.c_fc.weight"].T.contiguous(), hf[h + "mlp.c_fc.bias"]
        sd[f"{b}ff.layers.2.weight"], sd[f"{b}ff.layers.2.bias"] = hf[h + "mlp.c_proj.weight"].T.contiguous(), hf[h + "mlp.c_proj.bias"]
        sd[f"{b}norm1.scale"], sd[f"{b}norm1.shift"] = hf[h + "ln_1.weight"], hf[h + "ln_1.bias"]
        sd[f"{b}norm2.scale"], sd[f"{b}norm2.shift"] = hf[h + "ln_2.weight"], hf[h + "ln_2.bias"]
    sd["final_norm.scale"], sd["final_norm.shift"] = hf["transformer.ln_f.weight"], hf["transformer.ln_f.bias"]
    sd["out_head.weight"] = hf["lm_head.weight"]
    return {k: v.clone() for k, v in sd.items()}


def test_book_checkpoint_scores_as_the_model_it_holds(tmp_path, tiny_gpt2, small_mmlu, small_run, monkeypatch):
    import torch

    # the book's four sizes are 124M-1558M parameters; a tiny one is registered for the test,
    # so evalkit recognises it by its width as it recognises the real ones
    monkeypatch.setitem(finetune_import.BOOK_CONFIGS, "tiny (test)", TINY_BOOK)
    pth = tmp_path / "book-tiny.pth"
    torch.save({"model_state_dict": _book_state_dict(tiny_gpt2), "optimizer_state_dict": {}}, pth)

    source = resolve_model(pth)
    assert source.name == "book-tiny" and source.path == str(pth.resolve())
    assert source.sha256 == hashlib.sha256(pth.read_bytes()).hexdigest()
    assert (Path(source.pretrained) / "config.json").is_file()  # a Hugging Face folder in evalkit's cache
    assert resolve_model(pth).pretrained == source.pretrained  # converted once

    with ResultsStore(tmp_path / "evalkit.db") as store:
        book = run_mmlu(store, pth, data=small_mmlu, batch_size=SMALL_BATCH_SIZE, device="cpu", progress=False)
        book_samples = dict(store.samples(book.run_id))
        assert store.get_run(book.run_id).model == "book-tiny"
    _, plain_metrics, plain_samples = small_run  # the same weights as a Hugging Face folder, same data and batches
    assert {k: m.value for k, m in book.metrics.items()} == {k: m.value for k, m in plain_metrics.items()}
    assert set(book_samples) == set(plain_samples) and len(book_samples) == sum(SMALL_TEST.values())
    for item, payload in book_samples.items():
        assert payload["loglikelihoods"] == pytest.approx(plain_samples[item]["loglikelihoods"], abs=1e-5)


def test_book_checkpoint_that_is_not_one(tmp_path):
    from evalkit.errors import EvalkitError

    pth = tmp_path / "random.pth"
    pth.write_bytes(b"not a pickle")
    with pytest.raises(EvalkitError, match="random.pth: not a PyTorch state dict saved by torch.save"):
        resolve_model(pth)
