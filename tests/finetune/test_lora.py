"""LoRA: the merged checkpoint computes what the book's LoRA layer computes; only adapters train;
resume continues exactly; bad settings are refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from evalkit.errors import EvalkitError
from finetune import train
from finetune.lora import ADAPTER_DIR, LoraSettings, attach_lora, merged_model
from finetune.model import random_model
from tests.finetune.conftest import TINY_TRAINING

LORA = TINY_TRAINING | {"lora_rank": 4, "lora_alpha": 8.0, "lr": 5e-3}


def _book_model_with_hf_weights(hf):
    """The book's GPTModel holding ``hf``'s weights, loaded by the book's own
    ``load_weights_into_gpt`` from OpenAI's parameter layout (which HF's Conv1D weights share)."""
    from llms_from_scratch.ch04 import GPTModel
    from llms_from_scratch.ch05 import load_weights_into_gpt

    cfg = hf.config
    book = GPTModel({"vocab_size": cfg.vocab_size, "context_length": cfg.n_positions, "emb_dim": cfg.n_embd,
                     "n_heads": cfg.n_head, "n_layers": cfg.n_layer, "drop_rate": 0.0, "qkv_bias": True})
    sd = {k: v.detach().numpy() for k, v in hf.state_dict().items()}

    def conv(prefix):
        return {"w": sd[prefix + ".weight"], "b": sd[prefix + ".bias"]}

    def norm(prefix):
        return {"g": sd[prefix + ".weight"], "b": sd[prefix + ".bias"]}

    params = {
        "wte": sd["transformer.wte.weight"], "wpe": sd["transformer.wpe.weight"],
        "g": sd["transformer.ln_f.weight"], "b": sd["transformer.ln_f.bias"],
        "blocks": [{"attn": {"c_attn": conv(f"transformer.h.{i}.attn.c_attn"), "c_proj": conv(f"transformer.h.{i}.attn.c_proj")},
                    "mlp": {"c_fc": conv(f"transformer.h.{i}.mlp.c_fc"), "c_proj": conv(f"transformer.h.{i}.mlp.c_proj")},
                    "ln_1": norm(f"transformer.h.{i}.ln_1"), "ln_2": norm(f"transformer.h.{i}.ln_2")}
                   for i in range(cfg.n_layer)],
    }
    load_weights_into_gpt(book, params)
    return book.eval()


def _set_book_adapter(book_linear, a, b):
    """peft keeps A as (rank, in) and B as (out, rank); the book's LoRALayer keeps A (in, rank), B (rank, out)."""
    with torch.no_grad():
        book_linear.lora.A.copy_(a.T)
        book_linear.lora.B.copy_(b.T)


def test_merged_lora_model_has_the_logits_of_the_books_lora_layer():
    from llms_from_scratch.appendix_e import LinearWithLoRA, replace_linear_with_lora

    rank, alpha = 4, 8.0
    base = random_model("gpt2-tiny", seed=7).eval()
    book = _book_model_with_hf_weights(base)
    peft_model = attach_lora(base, LoraSettings.build(rank, alpha))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # fresh adapters are a no-op (B = 0): give B values so the test can fail
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    merged = merged_model(peft_model).eval()
    assert type(merged).__name__ == "GPT2LMHeadModel"

    replace_linear_with_lora(book, rank=rank, alpha=alpha / rank)  # the book scales by alpha, peft by alpha/rank
    dim = base.config.n_embd
    for i, block in enumerate(book.trf_blocks):
        layers = {n: m for n, m in peft_model.named_modules() if n.endswith(tuple(f"h.{i}.{s}" for s in
                  ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")))}

        def ab(suffix):
            layer = next(m for n, m in layers.items() if n.endswith(suffix))
            return layer.lora_A["default"].weight.detach(), layer.lora_B["default"].weight.detach()

        a, b = ab("attn.c_attn")  # one fused adapter = the same A for query, key and value, B split in three
        for j, proj in enumerate((block.att.W_query, block.att.W_key, block.att.W_value)):
            _set_book_adapter(proj, a, b[j * dim : (j + 1) * dim])
        _set_book_adapter(block.att.out_proj, *ab("attn.c_proj"))
        _set_book_adapter(block.ff.layers[0], *ab("mlp.c_fc"))
        _set_book_adapter(block.ff.layers[2], *ab("mlp.c_proj"))
    assert isinstance(book.out_head, LinearWithLoRA) and not book.out_head.lora.B.any()  # the head's adapter stays zero

    ids = torch.tensor([[15496, 11, 995, 318, 257, 1332, 13, 50256], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]])
    with torch.no_grad():
        expected = book(ids)
        got = merged(input_ids=ids).logits
        unmerged = peft_model.eval()(input_ids=ids).logits
        without = random_model("gpt2-tiny", seed=7).eval()(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert torch.allclose(unmerged, expected, atol=1e-4)
    assert (without - expected).abs().max() > 1e-2  # the adapters change the logits


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, book_data_file):
    root = tmp_path_factory.mktemp("lora")
    result = train(data=book_data_file, out=root / "out", **LORA)
    return result, root / "out"


def test_only_adapters_train_and_the_checkpoint_is_the_merged_model(lora_run):
    from peft import PeftModel
    from transformers import GPT2LMHeadModel

    result, out = lora_run
    # 2 layers x rank 4 x (c_attn 64+192, attn.c_proj 64+64, c_fc 64+256, mlp.c_proj 256+64)
    assert result.trainable_params == 2 * 4 * (256 + 128 + 320 + 320) == 8192
    # AdamW: two fp32 moments per adapter weight, plus a 4-byte step count per tensor (16 adapter tensors)
    assert result.optimizer_state_bytes == 2 * 4 * 8192 + 16 * 4
    summary = result.summary()
    assert summary["full_finetune_optimizer_state_mib"] == pytest.approx(8 * result.total_params / 2**20)
    assert summary["peak_memory_mib"] > 0 and summary["tokens_per_second"] > 0
    meta = json.loads((out / "evalkit_finetune.json").read_text())
    assert meta["finished"] and meta["hyperparameters"]["lora"] == {"rank": 4, "alpha": 8.0, "targets": ["c_attn", "c_proj", "c_fc"]}

    saved = GPT2LMHeadModel.from_pretrained(out).eval()  # a plain GPT-2, no peft needed
    base = random_model("gpt2-tiny", seed=LORA.get("seed", 123))
    base_sd, saved_sd = base.state_dict(), saved.state_dict()
    frozen = [k for k in base_sd if not any(t in k for t in ("c_attn.weight", "c_proj.weight", "c_fc.weight"))]
    for key in frozen:  # embeddings, norms and biases are the base's
        assert torch.equal(base_sd[key], saved_sd[key]), key
    assert not torch.equal(base_sd["transformer.h.0.attn.c_attn.weight"], saved_sd["transformer.h.0.attn.c_attn.weight"])

    rebuilt = PeftModel.from_pretrained(random_model("gpt2-tiny", seed=123), out / ADAPTER_DIR).merge_and_unload().eval()
    ids = torch.tensor([[15496, 11, 995, 318]])
    with torch.no_grad():
        assert torch.allclose(rebuilt(input_ids=ids).logits, saved(input_ids=ids).logits, atol=1e-5)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"]  # the adapters learn


def test_interrupted_lora_run_resumes_to_the_same_weights(lora_run, tmp_path, book_data_file):
    from transformers import GPT2LMHeadModel

    _, uninterrupted = lora_run
    out = tmp_path / "out"
    first = train(data=book_data_file, out=out, stop_after_steps=3, **LORA)
    assert first.steps == 3 and (out / "checkpoints").is_dir()
    with pytest.raises(EvalkitError, match="--resume"):
        train(data=book_data_file, out=out, **LORA)
    second = train(data=book_data_file, out=out, resume=True, **LORA)
    assert second.steps == 6
    a, b = GPT2LMHeadModel.from_pretrained(uninterrupted).state_dict(), GPT2LMHeadModel.from_pretrained(out).state_dict()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"rank": 0}, "--lora-rank must be at least 1"), ({"rank": 4, "alpha": -1.0}, "--lora-alpha must be positive"),
     ({"rank": 4, "targets": ["lm_head"]}, "ties lm_head to the token embedding"),
     ({"rank": 4, "targets": ["q_proj"]}, "unknown module")],
)
def test_bad_lora_settings_are_refused(kwargs, message):
    with pytest.raises(EvalkitError, match=message):
        LoraSettings.build(**kwargs)


def test_cli_refuses_a_bad_target_with_exit_2_and_no_output(tmp_path, book_data_file):
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "--store", str(tmp_path / "s.db"), "finetune", "--model", "gpt2-tiny", "--init", "random",
         "--data", str(book_data_file), "--lora-rank", "4", "--lora-targets", "lm_head", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("evalkit: error: --lora-targets: unknown module(s) lm_head")
    assert not (tmp_path / "out").exists()
