"""Which model ``--model`` names, and lm-eval's model object for it.

``--model`` is a Hugging Face model directory, a hub id, or a checkpoint saved by the book's
code (``.pth``), which ``finetune.import_book_checkpoint`` converts once into a Hugging Face
directory under evalkit's cache. The model itself is lm-eval's (``hf``, or ``vllm`` when that
is installed and asked for), built from the same ``model_args`` its command line would build.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.schema import model_hash
from finetune.model import model_name

BACKENDS = ("hf", "vllm")
DEFAULT_BOOK_BASE = "gpt2-medium"  # chapter 7 fine-tunes GPT-2 medium
BOOK_SUFFIXES = (".pth", ".pt")
# "gpt2-medium", "openai-community/gpt2": what the hub accepts as a repo id
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


@dataclass(frozen=True)
class ModelSource:
    name: str  # the store's model name, as finetune names it: hub id, fine-tune name or folder name, file stem
    pretrained: str  # what lm-eval gets as pretrained=
    path: str | None  # the local file or folder the user named
    sha256: str | None  # evalkit.schema.model_hash of the weights (None for a hub id: the hub's revision names it)


def book_base(pth: Path) -> str:
    """The book's model size whose embedding width the checkpoint has (the four sizes differ in
    width); chapter 7's gpt2-medium when none matches, which the importer then reports."""
    import torch
    from finetune.book_import import BOOK_CONFIGS

    try:
        state = torch.load(pth, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # the importer reads it again and says what is wrong with it
        return DEFAULT_BOOK_BASE
    if isinstance(state, dict) and "model_state_dict" in state:  # the book's model_and_optimizer.pth
        state = state["model_state_dict"]
    if not isinstance(state, dict):
        return DEFAULT_BOOK_BASE
    # "module." / "_orig_mod." prefixes come from DDP and torch.compile
    emb = next((v for k, v in state.items() if k == "tok_emb.weight" or k.endswith(".tok_emb.weight")), None)
    width = emb.shape[-1] if emb is not None else None
    return next((name for name, cfg in BOOK_CONFIGS.items() if cfg["emb_dim"] == width), DEFAULT_BOOK_BASE)


def _import_book(pth: Path) -> Path:
    from finetune.book_import import import_book_checkpoint_cached

    # converted once into evalkit's cache (finetune's importer; generate runs reuse the same folder)
    return import_book_checkpoint_cached(pth, base=book_base(pth))


def resolve_model(spec: str | os.PathLike[str], *, store=None) -> ModelSource:
    """A model directory, a book checkpoint (converted once) or a hub id; anything else is an error."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EvalkitError(
                f"{path}: a folder, but not a Hugging Face model (no config.json); give a model directory "
                "saved with save_pretrained, a hub id such as gpt2-medium, or a book checkpoint (.pth)"
            )
        return ModelSource(model_name(str(path)), str(path.resolve()), str(path.resolve()), model_hash(path, cache=store))
    if path.is_file():
        if path.suffix not in BOOK_SUFFIXES:
            raise EvalkitError(
                f"{path}: a file, but not a book checkpoint (.pth); give a model directory, a hub id or a .pth file"
            )
        converted = _import_book(path)
        return ModelSource(model_name(str(path)), str(converted), str(path.resolve()), model_hash(path, cache=store))
    if path.suffix in BOOK_SUFFIXES or not _HUB_ID.match(text):
        raise EvalkitError(
            f"{text}: no such file or folder, and not a Hugging Face hub id; give a model directory, "
            "a hub id such as gpt2-medium, or a book checkpoint (.pth)"
        )
    return ModelSource(text, text, None, None)


def parse_model_args(text: str | None) -> dict[str, Any]:
    """``k=v,k2=v2`` parsed exactly as lm-eval's ``--model_args`` is."""
    if not text:
        return {}
    from lm_eval.utils import simple_parse_args_string

    try:
        return dict(simple_parse_args_string(text))
    except Exception as exc:  # lm-eval raises bare ValueErrors / IndexErrors on a malformed string
        raise EvalkitError(f"--model-args {text!r}: expected key=value pairs separated by commas ({exc})") from exc


def build_lm(source: ModelSource, *, backend: str, model_args: dict[str, Any], batch_size: int | str, device: str | None):
    """lm-eval's model object, built as ``lm_eval --model BACKEND --model_args pretrained=...`` builds it."""
    if backend not in BACKENDS:
        raise EvalkitError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise EvalkitError("--backend vllm needs the vllm package, which is not installed (pip install vllm); or use --backend hf")
    import lm_eval.api.registry

    if "pretrained" in model_args:
        raise EvalkitError("--model-args must not set pretrained; --model names the model")
    args = {"pretrained": source.pretrained, **model_args}
    if device is None:
        # lm-eval's HFLM is handed device=None explicitly here and then reaches for CUDA on a
        # CPU-only torch; the help promises "cuda when available, else cpu", so decide it here
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return lm_eval.api.registry.get_model(backend).create_from_arg_obj(
            args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
        )
    except (OSError, ValueError, TypeError) as exc:  # TypeError: a --model-args key the model does not take
        where = (
            "from the Hugging Face Hub (no such local folder either; offline, or no such model?)"
            if source.path is None
            else f"from {source.pretrained}"
        )
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise EvalkitError(f"could not load model {source.name!r} {where}: {first}") from exc
