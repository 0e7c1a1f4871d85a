"""Offline-aware assets: tokenizer and data files, with and without a network."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from evalkit.assets import get_tokenizer, resolve_data, save_hf_tokenizer
from evalkit.errors import EvalkitError


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


def test_missing_tiktoken_download_names_the_variable(tmp_path, monkeypatch):
    import requests
    import tiktoken.load
    import tiktoken.registry

    def no_network(url):
        raise requests.exceptions.ConnectionError(f"Failed to resolve host for {url}")

    get_tokenizer.cache_clear()
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # forget the already-loaded encoding
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    try:
        with pytest.raises(EvalkitError) as exc:
            get_tokenizer("gpt2")
    finally:
        get_tokenizer.cache_clear()
    message = str(exc.value)
    assert "TIKTOKEN_CACHE_DIR" in message and "download failed" in message and "ConnectionError" in message
    assert "\n" not in message


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
