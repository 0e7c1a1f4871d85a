"""Offline-aware assets: tokenizer and data files, with and without a network."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from evalkit.assets import (
    BOOK_INSTRUCTION_DATA,
    BOOK_RESPONSES,
    EMBEDDED_DIR,
    GPT2_MERGES,
    GPT2_VOCAB,
    MMLU_SUBSET,
    embedded_file,
    embedded_manifest,
    get_tokenizer,
    gpt2_tokenizer_files,
    resolve_data,
    save_hf_tokenizer,
)
from evalkit.errors import EvalkitError
from tests.conftest import shared_path


def test_tiktoken_gpt2_from_cache_gives_book_token_ids(tiktoken_gpt2):
    enc = get_tokenizer("gpt2")
    # ids from the book (ch02): "Hello, do you like tea? <|endoftext|> In the sunlit terraces"
    text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces"
    assert enc.encode(text, allowed_special={"<|endoftext|>"}) == [
        15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114,
    ]


def test_tokenizer_directory_gives_same_ids_as_tiktoken(gpt2_tokenizer_dir, tiktoken_gpt2):
    get_tokenizer.cache_clear()
    from_dir = get_tokenizer(str(gpt2_tokenizer_dir))
    text = "Rewrite the sentence using a simile.\n\n### Input:\nThe car is very fast. ünïcödé 🙂"
    assert from_dir.encode(text) == tiktoken_gpt2.encode(text)
    assert from_dir.eot_token == 50256


def test_empty_tiktoken_cache_and_no_network_use_the_shipped_bpe_files(tmp_path, monkeypatch, tiktoken_gpt2):
    """No TIKTOKEN cache and no network: the gpt2 encoding is built from the files shipped with
    evalkit, with exactly tiktoken's ids, and nothing is downloaded."""
    import tiktoken.load

    read_local = tiktoken.load.read_file

    def no_network(path):
        assert not str(path).startswith(("http://", "https://")), f"tried to download {path}"
        return read_local(path)

    get_tokenizer.cache_clear()
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "evalkit-cache"))
    embedded_file.cache_clear()
    try:
        enc = get_tokenizer("gpt2")
        vocab, merges = gpt2_tokenizer_files(None)
    finally:
        get_tokenizer.cache_clear()
        embedded_file.cache_clear()
    text = "Rewrite the sentence using a simile.\n\n### Input:\nThe car is very fast. ünïcödé 🙂 <|endoftext|>"
    assert enc.name == "gpt2" and enc.n_vocab == 50257 and enc.eot_token == 50256
    assert enc.encode(text, allowed_special="all") == tiktoken_gpt2.encode(text, allowed_special="all")
    assert vocab.parent.parent == tmp_path / "evalkit-cache" / "embedded" and vocab.name == "vocab.json"
    assert merges.read_bytes() == shared_path("gpt2-tokenizer", "merges.txt").read_bytes()
    assert vocab.read_bytes() == shared_path("gpt2-tokenizer", "vocab.json").read_bytes()


def test_shipped_files_match_the_manifest_and_stay_small():
    """Every file under evalkit/data is in the manifest with source, licence and sha256; the
    sha256s (and, for gzip files, the unpacked content's) are right; each file < 1 MiB."""
    import gzip
    import hashlib

    manifest = embedded_manifest()
    on_disk = {p.relative_to(EMBEDDED_DIR).as_posix() for p in EMBEDDED_DIR.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(manifest)
    assert {BOOK_INSTRUCTION_DATA, BOOK_RESPONSES, GPT2_VOCAB, GPT2_MERGES, MMLU_SUBSET} == set(manifest)
    for name, entry in manifest.items():
        data = (EMBEDDED_DIR / name).read_bytes()
        assert len(data) == entry["bytes"] < 1 << 20, name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert entry["source"].startswith("https://") and entry["licence"], name
        if entry.get("compression") == "gzip":
            assert hashlib.sha256(gzip.decompress(data)).hexdigest() == entry["content_sha256"], name
    # tiktoken's own pinned hashes of the two GPT-2 files
    assert manifest[GPT2_VOCAB]["content_sha256"] == "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
    assert manifest[GPT2_MERGES]["content_sha256"] == "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"


def test_shipped_files_are_the_staged_public_files():
    import json

    assert embedded_file(BOOK_INSTRUCTION_DATA).read_bytes() == shared_path("book-ch07", "instruction-data.json").read_bytes()
    assert embedded_file(BOOK_RESPONSES).read_bytes() == shared_path("book-ch07", "instruction-data-with-response.json").read_bytes()
    shipped = embedded_file(MMLU_SUBSET).read_text(encoding="utf-8").splitlines()
    subjects = {json.loads(line)["subject"] for line in shipped}
    assert subjects == {"high_school_computer_science", "philosophy", "sociology", "nutrition"}
    full = [line for line in shared_path("mmlu", "test.jsonl").read_text(encoding="utf-8").splitlines()
            if json.loads(line)["subject"] in subjects]
    assert shipped == full and len(shipped) == 918


def test_damaged_shipped_file_is_a_clear_error(tmp_path, monkeypatch):
    import shutil

    import evalkit.assets

    copy = tmp_path / "data"
    shutil.copytree(EMBEDDED_DIR, copy)
    (copy / BOOK_RESPONSES).write_text("[]")
    monkeypatch.setattr(evalkit.assets, "EMBEDDED_DIR", copy)
    embedded_file.cache_clear()
    try:
        with pytest.raises(EvalkitError, match="instruction-data-with-response.json: missing or damaged"):
            embedded_file(BOOK_RESPONSES)
        with pytest.raises(EvalkitError, match="not a file shipped with evalkit"):
            embedded_file("nope.json")
    finally:
        embedded_file.cache_clear()


def test_bad_tokenizer_directory(tmp_path):
    with pytest.raises(EvalkitError, match="vocab.json and merges.txt"):
        get_tokenizer(str(tmp_path))


def test_save_hf_tokenizer_loads_in_transformers(tmp_path, gpt2_tokenizer_dir, tiktoken_gpt2):
    from transformers import AutoTokenizer

    save_hf_tokenizer(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert tok("Hello, world")["input_ids"] == tiktoken_gpt2.encode("Hello, world")


class _Counting(http.server.SimpleHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.json").write_text('[{"instruction": "x", "input": "", "output": "y"}]')
    handler = lambda *a, **k: _Counting(*a, directory=str(root), **k)  # noqa: E731
    _Counting.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_url_downloaded_once_then_reused(file_server, tmp_path, monkeypatch):
    base, root = file_server
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    first = resolve_data(f"{base}/data.json")
    assert first.read_text() == (root / "data.json").read_text()
    assert first.is_relative_to(tmp_path / "cache")
    second = resolve_data(f"{base}/data.json")
    assert second == first and _Counting.hits == 1


def test_corrupted_cache_is_downloaded_again(file_server, tmp_path, monkeypatch):
    base, root = file_server
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    path = resolve_data(f"{base}/data.json")
    path.write_text("tampered")
    again = resolve_data(f"{base}/data.json")
    assert again.read_text() == (root / "data.json").read_text() and _Counting.hits == 2


def test_wrong_sha256_is_refused(file_server, tmp_path, monkeypatch):
    base, _ = file_server
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(EvalkitError, match="expected 0000"):
        resolve_data(f"{base}/data.json", sha256="0000")


def test_unreachable_url_without_network_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(EvalkitError, match=r"could not download http://127\.0\.0\.1:9/x\.json .*local path"):
        resolve_data("http://127.0.0.1:9/x.json", timeout=5)
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_cached_url_works_offline(file_server, tmp_path, monkeypatch):
    base, _ = file_server
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))
    path = resolve_data(f"{base}/data.json")
    # the server is still up but must not be asked: count stays 1
    assert resolve_data(f"{base}/data.json") == path and _Counting.hits == 1


def test_local_path_and_missing_path(tmp_path):
    f = tmp_path / "d.json"
    f.write_text("[]")
    assert resolve_data(f) == f
    with pytest.raises(EvalkitError, match="no such file"):
        resolve_data(tmp_path / "missing.json")


def test_tiny_gpt2_fixture_loads_with_working_tokenizer(tiny_gpt2, tiktoken_gpt2):
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    assert tok("Below is an instruction")["input_ids"] == tiktoken_gpt2.encode("Below is an instruction")
    assert (tiny_gpt2 / "vocab.json").exists() and (tiny_gpt2 / "merges.txt").exists()
    model = GPT2LMHeadModel.from_pretrained(tiny_gpt2)
    assert model.config.n_layer == 2
