"""Offline-aware assets: the GPT-2 tokenizer and data files given as a path or a URL.

The GPT-2 BPE comes from tiktoken's ``gpt2`` encoding, which tiktoken downloads once into
``TIKTOKEN_CACHE_DIR``. Where that download is impossible the error says so and names the
variable; a Hugging Face tokenizer directory (``vocab.json`` + ``merges.txt``, the same two
files under other names) is accepted instead and gives identical token ids.

Data URLs are downloaded once into ``~/.cache/evalkit`` (``EVALKIT_CACHE`` overrides), with a
sha256 recorded beside the file on first download and checked on every reuse.
"""

from __future__ import annotations

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


# -- tokenizer ------------------------------------------------------------------------------


def _tiktoken_cache_file(url: str) -> Path | None:
    """Where tiktoken caches ``url`` (sha1 of the URL inside TIKTOKEN_CACHE_DIR), if it is there."""
    folder = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    folder = folder or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    path = Path(folder) / hashlib.sha1(url.encode()).hexdigest()
    return path if path.is_file() else None


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

    ``spec`` is ``None``/``"gpt2"`` (tiktoken's encoding, downloaded or from
    ``TIKTOKEN_CACHE_DIR``) or a directory holding ``vocab.json`` and ``merges.txt``.
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
    import tiktoken

    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as exc:  # requests' ConnectionError, SSL errors, proxies: all mean "no download"
        raise EvalkitError(
            f"could not load tiktoken's 'gpt2' encoding: its download failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'}). Set TIKTOKEN_CACHE_DIR to a "
            "folder holding tiktoken's cached gpt2 files, or pass a tokenizer directory with vocab.json and merges.txt"
        ) from exc


def gpt2_tokenizer_files(spec: str | None = None) -> tuple[Path, Path]:
    """``(vocab.json, merges.txt)`` paths for the GPT-2 BPE, to save a Hugging Face tokenizer
    beside a checkpoint without the hub: from a tokenizer directory or tiktoken's cache."""
    if spec not in (None, "gpt2"):
        get_tokenizer(spec)  # validates the folder
        return Path(spec) / "vocab.json", Path(spec) / "merges.txt"
    get_tokenizer(None)  # downloads into the cache if it can, or says why not
    encoder, bpe = _tiktoken_cache_file(GPT2_ENCODER_URL), _tiktoken_cache_file(GPT2_VOCAB_BPE_URL)
    if encoder is None or bpe is None:
        raise EvalkitError(
            "tiktoken's gpt2 files are not in its cache folder; set TIKTOKEN_CACHE_DIR to a writable folder "
            "(tiktoken then caches them there) or pass a tokenizer directory with vocab.json and merges.txt"
        )
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
