"""Shared fixtures: real public data from ../shared/data and a tiny random-weight GPT-2.

The data folder defaults to ``../shared/data`` beside the project (override with
``EVALKIT_SHARED_DATA``); tests that need it skip with the reason when it is absent.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EVALKIT_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")

# Subprocesses started by tests (the CLI, torchrun, kill tests) import this checkout's code.
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _ensure_tiktoken_cache() -> None:
    """tiktoken's gpt2 files offline: a writable copy of shared/data/tiktoken-cache."""
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    source = SHARED_DATA / "tiktoken-cache"
    if not source.is_dir():
        return
    target = Path(os.environ.get("PYTEST_TIKTOKEN_CACHE", "/tmp/evalkit-test-tiktoken-cache"))
    if not target.is_dir():
        tmp = target.with_name(f"{target.name}.{os.getpid()}")
        shutil.copytree(source, tmp)
        for path in [tmp, *tmp.iterdir()]:  # the staged copy is read-only; tiktoken may write here
            path.chmod(path.stat().st_mode | 0o200)
        try:
            tmp.rename(target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)


_ensure_tiktoken_cache()


def shared_path(*parts: str) -> Path:
    """A path under the shared data folder, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path} (set EVALKIT_SHARED_DATA to ../shared/data)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir() -> Path:
    """The real GPT-2 BPE as a Hugging Face tokenizer directory (vocab.json + merges.txt)."""
    return shared_path("gpt2-tokenizer")


@pytest.fixture(scope="session")
def tiktoken_gpt2():
    """tiktoken's real ``gpt2`` encoding (offline through TIKTOKEN_CACHE_DIR)."""
    shared_path("tiktoken-cache")
    import tiktoken

    return tiktoken.get_encoding("gpt2")


TINY_GPT2 = dict(n_layer=2, n_head=2, n_embd=64, n_positions=1024, vocab_size=50257)


def build_tiny_gpt2(out_dir: Path, tokenizer_dir: Path, seed: int = 0, **overrides) -> Path:
    """A randomly initialised GPT2LMHeadModel saved with ``save_pretrained`` beside the real
    GPT-2 tokenizer: loads exactly as ``gpt2-medium`` would (transformers, lm-eval, evalkit)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from evalkit.assets import save_hf_tokenizer

    torch.manual_seed(seed)
    config = GPT2Config(**{**TINY_GPT2, **overrides})
    model = GPT2LMHeadModel(config)
    model.save_pretrained(out_dir)
    save_hf_tokenizer(out_dir, str(tokenizer_dir))
    return out_dir


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory, gpt2_tokenizer_dir) -> Path:
    """Path of a tiny random-weight GPT-2 checkpoint (built once per test session)."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"), gpt2_tokenizer_dir)


@pytest.fixture
def store(tmp_path):
    from evalkit.store import ResultsStore

    with ResultsStore(tmp_path / "evalkit.db") as s:
        yield s


@pytest.fixture
def run_cli(tmp_path, capsys):
    """Run ``evalkit ARGS`` in-process against a temporary store; returns (rc, stdout, stderr)."""
    from evalkit.cli import main

    def _run(*args: str, store: Path | None = None):
        rc = main(["--store", str(store or tmp_path / "evalkit.db"), *map(str, args)])
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return _run


@pytest.fixture
def python_exe() -> str:
    return sys.executable
