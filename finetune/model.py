"""Loading GPT-2 models: Hugging Face hub ids, local checkpoint directories, the book's ``.pth``
files, or a random initialisation of a named size (for offline demos and benchmarks).

Every model is a ``transformers.GPT2LMHeadModel``; every checkpoint evalkit writes is a directory
that ``GPT2LMHeadModel.from_pretrained`` and ``lm_eval --model hf --model_args pretrained=DIR``
load unchanged (weights, config, tokenizer files), with evalkit's own metadata beside them in
``evalkit_finetune.json``.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

HUB_MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
METADATA_FILE = "evalkit_finetune.json"

# Architectures for a random start (``init="random"``): the four OpenAI sizes, as in the book's
# ``model_configs``, plus two small ones for demos and tests on a CPU.
MODEL_SIZES: dict[str, dict[str, int]] = {
    "gpt2-tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64},
    "gpt2-mini": {"n_layer": 4, "n_head": 4, "n_embd": 256},
    "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768},
    "gpt2-medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024},
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280},
    "gpt2-xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600},
}
_ALIASES = {"gpt2-small": "gpt2", "gpt2-small (124M)": "gpt2", "gpt2-medium (355M)": "gpt2-medium",
            "gpt2-large (774M)": "gpt2-large", "gpt2-xl (1558M)": "gpt2-xl"}


def size_config(model_size: str, **overrides: Any):
    """A ``GPT2Config`` for a named size (GPT-2's vocabulary and 1024 positions)."""
    from transformers import GPT2Config

    name = _ALIASES.get(model_size, model_size)
    if name not in MODEL_SIZES:
        raise EvalkitError(f"unknown model size {model_size!r}; choose one of {', '.join(MODEL_SIZES)}")
    return GPT2Config(**{"vocab_size": 50257, "n_positions": 1024, **MODEL_SIZES[name], **overrides})


def random_model(model_size: str = "gpt2-tiny", *, seed: int = 123, dropout: float | None = None):
    """A randomly initialised ``GPT2LMHeadModel`` of a named size, the same for the same seed.

    Built on the meta device and initialised once by transformers' own ``init_weights`` (GPT-2's
    normal(0, 0.02) weights, scaled residual projections, zero biases, unit LayerNorms): building
    it on the CPU directly draws every weight twice (the layers' constructors, then
    ``init_weights``), a second of start-up for GPT-2 124M.
    """
    import torch
    from transformers import GPT2LMHeadModel

    config = size_config(model_size, **_dropout_kwargs(dropout))
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    model.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.init_weights()
    return model


def use_fused_gelu(model) -> None:
    """Train GPT-2's ``gelu_new`` with torch's fused tanh-approximate GELU: the same formula
    (0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), equal to float rounding) in one kernel instead
    of seven elementwise ones forward and more backward: 12% of a GPT-2 124M training step on a
    2-core CPU. The config says so too, so the saved checkpoint is evaluated with what it was
    trained with (transformers' ``gelu_pytorch_tanh``). Generation keeps the model's own
    activation: its tokens are checked against the book's, to the last bit."""
    from transformers.activations import ACT2FN, NewGELUActivation

    if getattr(model.config, "activation_function", None) != "gelu_new":
        return
    for module in model.modules():
        if isinstance(getattr(module, "act", None), NewGELUActivation):
            module.act = ACT2FN["gelu_pytorch_tanh"]
    model.config.activation_function = "gelu_pytorch_tanh"


def _dropout_kwargs(dropout: float | None) -> dict[str, float]:
    if dropout is None:
        return {}
    return {"resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout}


@contextmanager
def quiet_transformers():
    """No "Loading weights" / "Writing model shards" bars from transformers: evalkit shows its own."""
    import transformers.utils.logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def is_checkpoint_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / "config.json").is_file()


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """evalkit's metadata beside a checkpoint's weights (empty for other checkpoints)."""
    file = Path(path) / METADATA_FILE
    if not file.is_file():
        return {}
    from evalkit.records import read_json_document

    meta = read_json_document(file, expected="evalkit's checkpoint metadata (a JSON object)")
    if not isinstance(meta, dict):
        raise EvalkitError(f"{file}: is a JSON {type(meta).__name__}; expected evalkit's checkpoint metadata (a JSON object)")
    return meta


def model_name(spec: str | os.PathLike[str]) -> str:
    """How a model is called in the results store: hub id, the name a fine-tune recorded, or
    the folder / file name."""
    text = str(spec)
    if Path(text).is_dir():
        meta = read_metadata(text)
        return str(meta.get("name") or Path(text).resolve().name)
    if text.endswith(".pth") and Path(text).is_file():
        return Path(text).stem
    if text.startswith("random:"):
        return text
    return text


def tokenizer_spec_for(spec: str | os.PathLike[str] | None) -> str | None:
    """The tokenizer to encode text for ``spec``: its own folder when it holds GPT-2 BPE files,
    else tiktoken's ``gpt2`` (the same ids)."""
    if spec is not None and Path(str(spec)).is_dir():
        folder = Path(str(spec))
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            return str(folder)
    return None


def load_model(
    spec: str | os.PathLike[str],
    *,
    dropout: float | None = None,
    device: str | None = None,
    book_base: str | dict | None = None,
):
    """``(GPT2LMHeadModel, model_name)`` for a hub id, a checkpoint directory, a book ``.pth``
    file (imported once into evalkit's cache; ``book_base`` names its size or gives the book's
    config dict, default: the size with its embedding width), or ``random:<size>`` (random init,
    seed 123)."""
    with quiet_transformers():
        model, name = _load_model(str(spec), dropout, book_base)
    if device:
        model.to(device)
    return model, name


def _load_model(text: str, dropout: float | None, book_base):
    from transformers import GPT2LMHeadModel

    name = model_name(text)
    kwargs = _dropout_kwargs(dropout)
    if text.startswith("random:"):
        model = random_model(text.split(":", 1)[1], dropout=dropout)
    elif text.endswith(".pth") and Path(text).is_file():
        from finetune.book_import import import_book_checkpoint_cached, infer_book_base

        folder = import_book_checkpoint_cached(text, base=book_base or infer_book_base(text))
        model = GPT2LMHeadModel.from_pretrained(folder, **kwargs)
    elif Path(text).exists():
        if not is_checkpoint_dir(text):
            raise EvalkitError(
                f"{text}: not a model: expected a Hugging Face checkpoint directory (config.json and weights) "
                "or a .pth file saved by the book's code"
            )
        from safetensors import SafetensorError

        try:
            model = GPT2LMHeadModel.from_pretrained(text, **kwargs)
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # missing, truncated or corrupt weights
            reason = str(exc).strip().split("\n")[0][:300] or type(exc).__name__
            raise EvalkitError(f"{text}: could not load the checkpoint ({reason})") from exc
    else:
        from evalkit.hub import hub_load_kwargs

        try:
            model = GPT2LMHeadModel.from_pretrained(text, **kwargs, **hub_load_kwargs())
        except OSError as exc:
            raise EvalkitError(
                f"could not load {text!r} from the Hugging Face Hub ({str(exc).splitlines()[0][:200]}). "
                "Without internet access pass a local checkpoint directory (--model DIR), a book .pth file, "
                "or start from random weights (--init random --model-size gpt2-tiny|gpt2|...)"
            ) from exc
    return model, name


_TOKENIZER_FILES: dict[str | None, Path] = {}


def _tokenizer_files(spec: str | None) -> Path:
    """A folder of Hugging Face tokenizer files for ``spec``, built once per process (building
    the fast tokenizer takes seconds; checkpoints are written often)."""
    import tempfile

    from evalkit.assets import save_hf_tokenizer

    folder = _TOKENIZER_FILES.get(spec)
    if folder is None or not folder.is_dir():
        folder = Path(tempfile.mkdtemp(prefix="evalkit-tokenizer-"))
        save_hf_tokenizer(folder, spec)
        _TOKENIZER_FILES[spec] = folder
    return folder


def save_checkpoint_dir(model, out_dir: str | os.PathLike[str], *, tokenizer: str | None, metadata: dict[str, Any]) -> Path:
    """Write a loadable Hugging Face GPT-2 directory: weights and config (``save_pretrained``),
    tokenizer files, and ``evalkit_finetune.json``."""
    import shutil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        getattr(model, "module", model).save_pretrained(out)
    for file in _tokenizer_files(tokenizer).iterdir():
        shutil.copyfile(file, out / file.name)
    write_metadata(out, metadata)
    return out


def write_metadata(folder: str | os.PathLike[str], metadata: dict[str, Any]) -> Path:
    """``evalkit_finetune.json`` in ``folder``."""
    path = Path(folder) / METADATA_FILE
    path.write_text(json.dumps(metadata, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path
