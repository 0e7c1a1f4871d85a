"""Loading models: the book's .pth import, checkpoint directories, hub ids offline."""

from __future__ import annotations

import pytest
import torch

from evalkit.errors import EvalkitError
from finetune import import_book_checkpoint, load_model, random_model
from finetune.book_import import book_to_hf_state_dict
from llms_from_scratch.ch04 import GPTModel  # the book's own chapter-4 model (PyPI: llms-from-scratch)

TINY_BOOK = {"vocab_size": 50257, "context_length": 64, "emb_dim": 32, "n_heads": 4, "n_layers": 2, "drop_rate": 0.0, "qkv_bias": True}


def _book_model(cfg, seed=0):
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    with torch.no_grad():  # non-trivial norms and biases, so a swapped scale/shift would show
        for name, p in model.named_parameters():
            if name.endswith(("scale", "shift", "bias")):
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.mark.parametrize("qkv_bias, tie", [(True, False), (False, True)])
def test_book_pth_imports_to_the_same_logits(tmp_path, gpt2_tokenizer_dir, qkv_bias, tie):
    cfg = TINY_BOOK | {"qkv_bias": qkv_bias}
    book = _book_model(cfg)
    if tie:  # as after the book's load_weights_into_gpt: out_head shares OpenAI's wte values
        book.out_head.weight = torch.nn.Parameter(book.tok_emb.weight.detach().clone())
    pth = tmp_path / "gpt2-tiny-sft.pth"
    torch.save(book.state_dict(), pth)
    out = import_book_checkpoint(pth, tmp_path / "hf", base=cfg, tokenizer=str(gpt2_tokenizer_dir))
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file() and (out / "vocab.json").is_file()
    hf, name = load_model(out)
    assert name == "gpt2-tiny-sft"
    assert hf.config.tie_word_embeddings is tie
    idx = torch.tensor([[15496, 11, 995, 0, 318, 257, 1332], [464, 3290, 318, 4171, 13, 50256, 50256]])
    with torch.no_grad():
        expected = book(idx)
        got = hf.eval()(idx).logits
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_book_pth_variants_and_errors(tmp_path, gpt2_tokenizer_dir):
    book = _book_model(TINY_BOOK)
    wrapped = {"model_state_dict": {f"module.{k}": v for k, v in book.state_dict().items()}, "optimizer_state_dict": {}}
    pth = tmp_path / "model_and_optimizer.pth"
    torch.save(wrapped, pth)  # the book's chapter-5 format, saved from a DDP-wrapped model
    out = import_book_checkpoint(pth, tmp_path / "hf", base=TINY_BOOK, tokenizer=str(gpt2_tokenizer_dir))
    hf, _ = load_model(out)
    with torch.no_grad():
        assert torch.allclose(hf.eval()(torch.tensor([[1, 2, 3]])).logits, book(torch.tensor([[1, 2, 3]])), atol=1e-5)
    with pytest.raises(EvalkitError, match=r"embedding width 32 does not match base 'gpt2-medium' \(emb_dim=1024\)"):
        import_book_checkpoint(pth, tmp_path / "x", tokenizer=str(gpt2_tokenizer_dir))
    with pytest.raises(EvalkitError, match="more layers than n_layers=1"):
        book_to_hf_state_dict(book.state_dict(), TINY_BOOK | {"n_layers": 1})
    junk = tmp_path / "junk.pth"
    torch.save({"weight": torch.zeros(2)}, junk)
    with pytest.raises(EvalkitError, match="not a checkpoint of the book's GPTModel"):
        import_book_checkpoint(junk, tmp_path / "y")


def test_load_model_from_pth_path_uses_the_import_cache(tmp_path, monkeypatch, gpt2_tokenizer_dir):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    book = _book_model(TINY_BOOK)
    pth = tmp_path / "sft.pth"
    torch.save(book.state_dict(), pth)
    hf, name = load_model(pth, book_base=TINY_BOOK)
    assert name == "sft"
    assert len(list((tmp_path / "cache" / "book-imports").iterdir())) == 1
    with torch.no_grad():
        assert torch.allclose(hf.eval()(torch.tensor([[5, 6]])).logits, book(torch.tensor([[5, 6]])), atol=1e-5)


def test_checkpoint_dir_and_offline_hub_id(tiny_gpt2, tmp_path):
    model, name = load_model(tiny_gpt2)
    assert model.config.n_layer == 2 and name == tiny_gpt2.name
    with pytest.raises(EvalkitError, match=r"could not load 'gpt2-medium' from the Hugging Face Hub .*--init random"):
        load_model("gpt2-medium")  # HF_HUB_OFFLINE=1 in tests: what a user without internet sees
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalkitError, match="empty: not a model"):
        load_model(tmp_path / "empty")


def test_book_pth_size_is_inferred_from_its_width(tmp_path):
    from finetune.book_import import infer_book_base

    book = _book_model(TINY_BOOK | {"vocab_size": 100, "emb_dim": 768, "n_heads": 12, "n_layers": 1, "context_length": 8})
    pth = tmp_path / "small.pth"
    torch.save(book.state_dict(), pth)
    assert infer_book_base(pth) == "gpt2-small (124M)"


def test_random_init_is_gpt2s_initialisation_and_seeded():
    from finetune.model import random_model

    model = random_model("gpt2-mini", seed=7)
    again = random_model("gpt2-mini", seed=7)
    other = random_model("gpt2-mini", seed=8)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in again.state_dict().items())
    assert not torch.equal(state["transformer.h.0.attn.c_attn.weight"], other.state_dict()["transformer.h.0.attn.c_attn.weight"])
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied, as GPT-2
    n_layer = model.config.n_layer
    for name, tensor in state.items():
        assert torch.isfinite(tensor).all(), name  # every tensor initialised (built on the meta device)
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            assert torch.equal(tensor, torch.ones_like(tensor)), name
        elif name.endswith(".bias"):
            assert torch.equal(tensor, torch.zeros_like(tensor)), name
        elif name.endswith("c_proj.weight"):  # GPT-2's scaled residual projections
            assert float(tensor.std()) == pytest.approx(0.02 / (2 * n_layer) ** 0.5, rel=0.05), name
        elif name.endswith("weight"):
            assert float(tensor.std()) == pytest.approx(0.02, rel=0.05), name


def test_fused_gelu_trains_the_same_function_and_says_so_in_the_config():
    from transformers.activations import NewGELUActivation

    from finetune.model import use_fused_gelu

    ids = torch.randint(0, 50257, (2, 17), generator=torch.Generator().manual_seed(0))
    plain, fused = random_model("gpt2-tiny", seed=5, dropout=0.0), random_model("gpt2-tiny", seed=5, dropout=0.0)
    use_fused_gelu(fused)
    assert fused.config.activation_function == "gelu_pytorch_tanh" and plain.config.activation_function == "gelu_new"
    assert not any(isinstance(m, NewGELUActivation) for m in fused.modules())
    outputs = []
    for model in (plain, fused):
        logits = model(input_ids=ids).logits
        logits.float().logsumexp(-1).sum().backward()
        outputs.append((logits.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (a, grads_a), (b, grads_b) = outputs
    assert torch.allclose(a, b, atol=1e-5) and not torch.equal(a, b)  # a different kernel, the same formula
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], atol=1e-5, rtol=1e-4), name
    # a checkpoint saved with it loads with it
    reloaded = type(fused)(fused.config)
    assert not any(isinstance(m, NewGELUActivation) for m in reloaded.modules())
