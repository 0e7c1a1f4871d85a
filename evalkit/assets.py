"""Offline-aware assets: the GPT-2 tokenizer, the files shipped with evalkit, and data files
given as a path or a URL.

The package ships a few small public files (``evalkit/data``, listed with source, licence and
sha256 in ``evalkit/data/manifest.json``): the book's chapter 7 instruction data and its
responses file, GPT-2's BPE files and four MMLU subjects, so that the demo and the default
paths work on a machine with no network. Each is checked against its sha256 when first used.

The GPT-2 BPE is tiktoken's ``gpt2`` encoding: from tiktoken's cache (``TIKTOKEN_CACHE_DIR``)
when it holds the files, else built from the shipped copies of the same two files (identical
token ids, no download). A Hugging Face tokenizer directory (``vocab.json`` + ``merges.txt``,
the same two files under other names) is accepted too.

Data URLs are downloaded once into ``~/.cache/evalkit`` (``EVALKIT_CACHE`` overrides), with a
sha256 recorded beside the file on first download and checked on every reuse.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path

from evalkit.errors import EvalkitError

GPT2_ENCODER_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"
GPT2_VOCAB_BPE_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe"
ENDOFTEXT = "<|endoftext|>"
ENDOFTEXT_ID = 50256


def cache_dir() -> Path:
    return Path(os.environ.get("EVALKIT_CACHE") or Path.home() / ".cache" / "evalkit")


def is_url(spec: str | os.PathLike[str]) -> bool:
    return str(spec).startswith(("http://", "https://"))


# -- files shipped with evalkit -------------------------------------------------------------

EMBEDDED_DIR = Path(__file__).resolve().with_name("data")
BOOK_INSTRUCTION_DATA = "book-ch07/instruction-data.json"
BOOK_RESPONSES = "book-ch07/instruction-data-with-response.json"
GPT2_VOCAB = "gpt2/vocab.json.gz"
GPT2_MERGES = "gpt2/merges.txt.gz"
MMLU_SUBSET = "mmlu/test.jsonl"


@lru_cache(maxsize=1)
def embedded_manifest() -> dict[str, dict]:
    """``{path: entry}`` from ``evalkit/data/manifest.json`` (source, licence, sha256 per file)."""
    doc = json.loads((EMBEDDED_DIR / "manifest.json").read_text(encoding="utf-8"))
    return {entry["path"]: entry for entry in doc["files"]}


@lru_cache(maxsize=16)
def embedded_file(name: str) -> Path:
    """A shipped file as a plain local path, checked against the manifest's sha256.

    Compressed files (``compression: gzip``) are unpacked once into evalkit's cache folder, so
    callers (tiktoken, ``transformers``, lm-eval) read ordinary files.
    """
    entry = embedded_manifest().get(name)
    if entry is None:
        raise EvalkitError(f"{name}: not a file shipped with evalkit (see {EMBEDDED_DIR / 'manifest.json'})")
    packed = EMBEDDED_DIR / name
    if not packed.is_file() or _sha256_file(packed) != entry["sha256"]:
        raise EvalkitError(f"{packed}: missing or damaged (sha256 differs from the manifest); reinstall evalkit")
    if entry.get("compression") != "gzip":
        return packed
    content_sha = entry["content_sha256"]
    target = _unpack_dir() / content_sha[:16] / Path(name).name.removesuffix(".gz")
    if target.is_file() and _sha256_file(target) == content_sha:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    if _sha256_file(tmp) != content_sha:
        tmp.unlink(missing_ok=True)
        raise EvalkitError(f"{packed}: unpacks to a file whose sha256 differs from the manifest; reinstall evalkit")
    os.replace(tmp, target)  # atomic: concurrent processes unpack the same bytes
    return target


def _unpack_dir() -> Path:
    """evalkit's cache folder, or a temporary one where the home folder is not writable."""
    folder = cache_dir() / "embedded"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        return Path(tempfile.gettempdir()) / f"evalkit-embedded-{os.getuid() if hasattr(os, 'getuid') else 0}"


def embedded_gpt2_files() -> tuple[Path, Path]:
    """``(vocab.json, merges.txt)``: GPT-2's BPE files shipped with evalkit."""
    return embedded_file(GPT2_VOCAB), embedded_file(GPT2_MERGES)


# -- tokenizer ------------------------------------------------------------------------------


def _tiktoken_cache_file(url: str) -> Path | None:
    """Where tiktoken caches ``url`` (sha1 of the URL inside TIKTOKEN_CACHE_DIR), if it is there."""
    folder = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    folder = folder or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    path = Path(folder) / hashlib.sha1(url.encode()).hexdigest()
    return path if path.is_file() else None


def _tiktoken_gpt2_cached() -> bool:
    return _tiktoken_cache_file(GPT2_ENCODER_URL) is not None and _tiktoken_cache_file(GPT2_VOCAB_BPE_URL) is not None


def _encoding_from_files(vocab_json: Path, merges_txt: Path, name: str):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    # the same construction as tiktoken's own gpt2(), from local files instead of URLs
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=str(merges_txt), encoder_json_file=str(vocab_json))
    return tiktoken.Encoding(
        name=name,
        explicit_n_vocab=50257,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: ENDOFTEXT_ID},
    )


@lru_cache(maxsize=8)
def get_tokenizer(spec: str | None = None):
    """A tiktoken ``Encoding`` for GPT-2.

    ``spec`` is ``None``/``"gpt2"`` (tiktoken's encoding from ``TIKTOKEN_CACHE_DIR`` when it
    holds the files, else the same encoding built from the files shipped with evalkit) or a
    directory holding ``vocab.json`` and ``merges.txt``.
    """
    if spec not in (None, "gpt2"):
        folder = Path(spec)
        vocab, merges = folder / "vocab.json", folder / "merges.txt"
        if not (vocab.is_file() and merges.is_file()):
            raise EvalkitError(
                f"{folder}: not a GPT-2 tokenizer directory (expected vocab.json and merges.txt), "
                "and not the name 'gpt2'"
            )
        return _encoding_from_files(vocab, merges, name=f"gpt2@{folder}")
    if not _tiktoken_gpt2_cached():
        # the shipped files are byte-identical to tiktoken's (same sha256): no download needed
        return _encoding_from_files(*embedded_gpt2_files(), name="gpt2")
    import tiktoken

    try:
        return tiktoken.get_encoding("gpt2")
    except Exception:  # noqa: BLE001 - a damaged cache (tiktoken re-downloads, which may fail offline)
        return _encoding_from_files(*embedded_gpt2_files(), name="gpt2")


def gpt2_tokenizer_files(spec: str | None = None) -> tuple[Path, Path]:
    """``(vocab.json, merges.txt)`` paths for the GPT-2 BPE, to save a Hugging Face tokenizer
    beside a checkpoint without the hub: from a tokenizer directory, tiktoken's cache or the
    copies shipped with evalkit."""
    if spec not in (None, "gpt2"):
        get_tokenizer(spec)  # validates the folder
        return Path(spec) / "vocab.json", Path(spec) / "merges.txt"
    encoder, bpe = _tiktoken_cache_file(GPT2_ENCODER_URL), _tiktoken_cache_file(GPT2_VOCAB_BPE_URL)
    if encoder is None or bpe is None:
        return embedded_gpt2_files()
    return encoder, bpe


def save_hf_tokenizer(out_dir: str | os.PathLike[str], spec: str | None = None) -> None:
    """Write GPT-2 tokenizer files (``vocab.json``, ``merges.txt``, ``tokenizer.json``, configs)
    that ``AutoTokenizer.from_pretrained(out_dir)`` and lm-eval load offline."""
    from transformers import GPT2TokenizerFast

    vocab, merges = gpt2_tokenizer_files(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores vocab_file/merges_file passed to the constructor (it builds an empty
    # tokenizer); loading from a folder that holds the two files is the supported way.
    shutil.copyfile(vocab, out / "vocab.json")
    shutil.copyfile(merges, out / "merges.txt")
    GPT2TokenizerFast.from_pretrained(str(out)).save_pretrained(str(out))


# -- data files -----------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_data(spec: str | os.PathLike[str], *, sha256: str | None = None, timeout: float = 60) -> Path:
    """A local path for ``spec``: the path itself, or a URL downloaded once into the cache.

    A cached download is checked against the sha256 recorded when it was fetched (or the
    ``sha256`` given); a mismatch re-downloads, a failed download is a clear error.
    """
    if not is_url(spec):
        path = Path(spec).expanduser()
        if not path.exists():
            raise EvalkitError(f"{path}: no such file")
        if sha256 and _sha256_file(path) != sha256:
            raise EvalkitError(f"{path}: sha256 does not match the expected {sha256}")
        return path
    url = str(spec)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(urllib.request.url2pathname(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1])).name or "download"
    target = cache_dir() / "downloads" / f"{key}-{name}"
    meta = target.with_name(target.name + ".json")
    if target.is_file() and meta.is_file():
        recorded = json.loads(meta.read_text()).get("sha256")
        actual = _sha256_file(target)
        if actual == (sha256 or recorded):
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise EvalkitError(
            f"could not download {url} ({reason}); this machine may be offline: download the file "
            "elsewhere and pass its local path instead"
        ) from exc
    actual = _sha256_file(tmp)
    if sha256 and actual != sha256:
        tmp.unlink(missing_ok=True)
        raise EvalkitError(f"{url}: downloaded file has sha256 {actual}, expected {sha256}")
    os.replace(tmp, target)
    meta.write_text(json.dumps({"url": url, "sha256": actual}))
    return target
