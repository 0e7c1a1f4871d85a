"""Import a checkpoint saved by the book's own code into a Hugging Face GPT-2 directory.

The book's ``GPTModel`` (chapter 4) stores ``tok_emb``, ``pos_emb``, ``trf_blocks.N.att.W_query``
/ ``W_key`` / ``W_value`` / ``out_proj``, ``trf_blocks.N.ff.layers.0`` / ``.2``, ``norm1`` /
``norm2`` / ``final_norm`` (``scale``, ``shift``) and ``out_head``. This is the inverse of the
book's ``load_weights_into_gpt``: ``nn.Linear`` weights are transposed into GPT-2's ``Conv1D``
layout and the three attention projections are concatenated into ``c_attn``. The same
architecture (pre-LayerNorm with eps 1e-5, tanh GELU, causal attention scaled by
sqrt(head_dim)), so the imported model computes the same logits.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

# The book's model_configs (chapter 5) on top of its BASE_CONFIG for OpenAI's weights.
BOOK_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}
_BASE_NAMES = {"gpt2": "gpt2-small (124M)", "gpt2-small": "gpt2-small (124M)", "gpt2-medium": "gpt2-medium (355M)",
               "gpt2-large": "gpt2-large (774M)", "gpt2-xl": "gpt2-xl (1558M)"}
_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel and torch.compile wrappers


def book_config(base: str | dict) -> dict[str, Any]:
    """The book's config dict (``vocab_size``, ``context_length``, ``emb_dim``, ``n_heads``,
    ``n_layers``, ``drop_rate``, ``qkv_bias``) for a size name or a dict of those keys."""
    defaults = {"vocab_size": 50257, "context_length": 1024, "drop_rate": 0.0, "qkv_bias": True}
    if isinstance(base, dict):
        missing = [k for k in ("emb_dim", "n_heads", "n_layers") if k not in base]
        if missing:
            raise EvalkitError(f"book config is missing {', '.join(missing)}")
        return {**defaults, **base}
    name = _BASE_NAMES.get(base, base)
    if name not in BOOK_CONFIGS:
        raise EvalkitError(f"unknown book model size {base!r}; use one of {', '.join(_BASE_NAMES)} or a config dict")
    return {**defaults, **BOOK_CONFIGS[name]}


def _state_dict(pth: Path) -> dict:
    import torch

    try:
        obj = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-tensor pickles
        raise EvalkitError(f"{pth}: not a PyTorch state dict saved by torch.save ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and "model_state_dict" in obj:  # the book's model_and_optimizer.pth
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or "tok_emb.weight" not in {_strip(k) for k in obj}:
        raise EvalkitError(f"{pth}: not a checkpoint of the book's GPTModel (no 'tok_emb.weight')")
    return {_strip(k): v for k, v in obj.items()}


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def book_to_hf_state_dict(sd: dict, cfg: dict) -> tuple[dict, bool]:
    """GPT-2 (Hugging Face) weights from the book's; second value: whether ``out_head`` and
    ``tok_emb`` are the same tensor values (then the HF model can tie them)."""
    import torch

    def get(key: str):
        if key not in sd:
            raise EvalkitError(f"book checkpoint has no {key!r} (is the config right? n_layers={cfg['n_layers']})")
        return sd[key]

    dim = cfg["emb_dim"]
    out = {"transformer.wte.weight": get("tok_emb.weight"), "transformer.wpe.weight": get("pos_emb.weight")}
    for i in range(cfg["n_layers"]):
        b, h = f"trf_blocks.{i}.", f"transformer.h.{i}."
        q, k, v = (get(f"{b}att.{n}.weight") for n in ("W_query", "W_key", "W_value"))
        out[h + "attn.c_attn.weight"] = torch.cat([q.T, k.T, v.T], dim=1)
        biases = [sd.get(f"{b}att.{n}.bias") for n in ("W_query", "W_key", "W_value")]
        out[h + "attn.c_attn.bias"] = (
            torch.cat(biases) if all(x is not None for x in biases) else torch.zeros(3 * dim, dtype=q.dtype)
        )
        out[h + "attn.c_proj.weight"] = get(f"{b}att.out_proj.weight").T
        out[h + "attn.c_proj.bias"] = get(f"{b}att.out_proj.bias")
        out[h + "mlp.c_fc.weight"] = get(f"{b}ff.layers.0.weight").T
        out[h + "mlp.c_fc.bias"] = get(f"{b}ff.layers.0.bias")
        out[h + "mlp.c_proj.weight"] = get(f"{b}ff.layers.2.weight").T
        out[h + "mlp.c_proj.bias"] = get(f"{b}ff.layers.2.bias")
        for book_norm, hf_norm in (("norm1", "ln_1"), ("norm2", "ln_2")):
            out[h + f"{hf_norm}.weight"] = get(f"{b}{book_norm}.scale")
            out[h + f"{hf_norm}.bias"] = get(f"{b}{book_norm}.shift")
    out["transformer.ln_f.weight"] = get("final_norm.scale")
    out["transformer.ln_f.bias"] = get("final_norm.shift")
    head = get("out_head.weight")
    tied = torch.equal(head, out["transformer.wte.weight"])
    out["lm_head.weight"] = head
    extra = sorted(k for k in sd if re.match(r"trf_blocks\.(\d+)\.", k) and int(k.split(".")[1]) >= cfg["n_layers"])
    if extra:
        raise EvalkitError(f"book checkpoint has more layers than n_layers={cfg['n_layers']} (e.g. {extra[0]!r})")
    return {k: v.contiguous().clone() for k, v in out.items()}, tied


def import_book_checkpoint(
    pth: str | Path, out_dir: str | Path, *, base: str | dict = "gpt2-medium", tokenizer: str | None = None
) -> Path:
    """Convert a book ``GPTModel`` ``.pth`` into a Hugging Face GPT-2 directory at ``out_dir``.

    ``base`` names the book's model size (``gpt2-medium`` by default, as in chapter 7) or is a
    dict of the book's config keys; shapes are checked against it (the number of heads cannot be
    read from the weights). ``tokenizer`` is a GPT-2 tokenizer directory (default: tiktoken's
    ``gpt2`` files) written beside the weights.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    from finetune.model import save_checkpoint_dir

    pth = Path(pth)
    if not pth.is_file():
        raise EvalkitError(f"{pth}: no such file")
    sd = _state_dict(pth)
    cfg = book_config(base)
    vocab, ctx = sd["tok_emb.weight"].shape[0], sd["pos_emb.weight"].shape[0]
    dim = sd["tok_emb.weight"].shape[1]
    if dim != cfg["emb_dim"]:
        guess = [n for n, c in BOOK_CONFIGS.items() if c["emb_dim"] == dim]
        raise EvalkitError(
            f"{pth}: embedding width {dim} does not match base {base!r} (emb_dim={cfg['emb_dim']})"
            + (f"; try base={guess[0].split(' ')[0]!r}" if guess else "; pass base as a dict of the book's config")
        )
    cfg = {**cfg, "vocab_size": vocab, "context_length": ctx}
    hf_sd, tied = book_to_hf_state_dict(sd, cfg)
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=ctx,
        n_embd=dim,
        n_layer=cfg["n_layers"],
        n_head=cfg["n_heads"],
        resid_pdrop=cfg["drop_rate"],
        embd_pdrop=cfg["drop_rate"],
        attn_pdrop=cfg["drop_rate"],
        layer_norm_epsilon=1e-5,
        activation_function="gelu_new",
        tie_word_embeddings=tied,
    )
    model = GPT2LMHeadModel(config)
    missing, unexpected = model.load_state_dict(hf_sd, strict=False)
    missing = [k for k in missing if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")]
    if missing or unexpected:
        raise EvalkitError(f"{pth}: weights do not fit GPT-2 (missing {missing[:3]}, unexpected {unexpected[:3]})")
    metadata = {"name": pth.stem, "source": {"book_pth": str(pth.resolve()), "book_config": cfg}}
    return save_checkpoint_dir(model.eval(), out_dir, tokenizer=tokenizer, metadata=metadata)


def infer_book_base(pth: str | Path) -> str:
    """The book's model size with the checkpoint's embedding width (the four sizes differ in
    width), or chapter 7's ``gpt2-medium`` when none matches (the importer then says why)."""
    sd = _state_dict(Path(pth))
    width = sd["tok_emb.weight"].shape[1]
    return next((name for name, cfg in BOOK_CONFIGS.items() if cfg["emb_dim"] == width), "gpt2-medium")


def import_book_checkpoint_cached(pth: str | Path, *, base: str | dict = "gpt2-medium", tokenizer: str | None = None) -> Path:
    """Import once into evalkit's cache (keyed by the file's size, mtime and base) and reuse."""
    from evalkit.assets import cache_dir
    from evalkit.hashing import content_hash

    pth = Path(pth).resolve()
    stat = pth.stat()
    key = content_hash([str(pth), stat.st_size, stat.st_mtime_ns, base])
    folder = cache_dir() / "book-imports" / f"{pth.stem}-{key}"
    if not (folder / "config.json").is_file():
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}")
        import_book_checkpoint(pth, tmp, base=base, tokenizer=tokenizer)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process imported it first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return folder

