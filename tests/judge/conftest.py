"""Fixtures for judge tests: the loopback Ollama server (see fake_ollama.py)."""

from __future__ import annotations

import pytest

from tests.judge.fake_ollama import FakeOllama


@pytest.fixture
def fake_ollama():
    """A running :class:`FakeOllama` serving ``llama3``; stopped after the test."""
    with FakeOllama(models={"llama3": {}}) as server:
        yield server
