"""Which model ``--model`` names, and lm-eval's model object for it.

``--model`` is a Hugging Face model directory, a hub id, or a checkpoint saved by the book's
code (``.pth``), which ``finetune.import_book_checkpoint`` converts once into a Hugging Face
directory under evalkit's cache. The model itself is lm-eval's (``hf``, or ``vllm`` when that
is installed and asked for), built from the same ``model_args`` its command line would build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.assets import cache_dir
from evalkit.errors import EvalkitError

BACKENDS = ("hf", "vllm")
BOOK_SUFFIXES = (".pth", ".pt")
# "gpt2-medium", "openai-community/gpt2": what the hub accepts as a repo id
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_WEIGHT_GLOBS = ("config.json", "*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


@dataclass(frozen=True)
class ModelSource:
    name: str  # the store's model name: the hub id, the folder's name or the checkpoint's stem
    pretrained: str  # what lm-eval gets as pretrained=
    path: str | None  # the local file or folder the user named
    sha256: str | None  # of the weights (None for a hub id: the hub's revision names it)


def _file_digest(path: Path, store=None) -> str:
    """sha256 of a file, remembered in the store's cache by (path, size, mtime) so a large
    checkpoint is read once, not on every evaluation."""
    stat = path.stat()
    key = f"file-sha256:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if store is not None and (hit := store.cache_get(key)):
        return hit
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if store is not None:
        store.cache_put(key, value)
    return value


def _folder_digest(folder: Path, store=None) -> str:
    files = sorted({p for pattern in _WEIGHT_GLOBS for p in folder.glob(pattern) if p.is_file()})
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{_file_digest(p, store)}\0".encode())
    return digest.hexdigest()


def _import_book(pth: Path, digest: str) -> Path:
    try:
        from finetune import import_book_checkpoint
    except ImportError as exc:
        raise EvalkitError(f"{pth}: converting a book checkpoint needs finetune.import_book_checkpoint ({exc})") from exc
    root = cache_dir() / "book-checkpoints"
    target = root / digest[:16]
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{digest[:16]}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    try:
        import_book_checkpoint(pth, tmp)
        tmp.rename(target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
        return ModelSource(path.resolve().name, str(path.resolve()), str(path.resolve()), _folder_digest(path, store))
    if path.is_file():
        if path.suffix not in BOOK_SUFFIXES:
            raise EvalkitError(
                f"{path}: a file, but not a book checkpoint (.pth); give a model directory, a hub id or a .pth file"
            )
        digest = _file_digest(path, store)
        converted = _import_book(path, digest)
        return ModelSource(path.stem, str(converted), str(path.resolve()), digest)
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
    try:
        return lm_eval.api.registry.get_model(backend).create_from_arg_obj(
            args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
        )
    except (OSError, ValueError) as exc:
        where = "from the Hugging Face Hub (offline, or no such model?)" if source.path is None else f"from {source.pretrained}"
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise EvalkitError(f"could not load model {source.name!r} {where}: {first}") from exc
