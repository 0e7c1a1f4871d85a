"""An unreachable Hugging Face Hub is known at once: HF_HUB_OFFLINE is honoured without a
connection, else one short connection attempt decides, and hub ids then load from the local
cache only, so a missing model is an immediate error naming the local options."""

from __future__ import annotations

import pytest

import evalkit.hub as hub
from evalkit.errors import EvalkitError


@pytest.fixture
def fresh(monkeypatch):
    hub._connects.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    hub._connects.cache_clear()


def test_offline_variable_means_no_connection_attempt(fresh):
    fresh.setenv("HF_HUB_OFFLINE", "1")
    fresh.setattr(hub.socket, "create_connection", lambda *a, **k: pytest.fail("tried to connect"))
    assert hub.hub_reachable() is False
    assert hub.hub_load_kwargs() == {"local_files_only": True}


def test_unreachable_hub_is_decided_by_one_short_attempt(fresh):
    fresh.delenv("HF_HUB_OFFLINE", raising=False)
    fresh.delenv("TRANSFORMERS_OFFLINE", raising=False)
    attempts = []

    def refuse(address, timeout):
        attempts.append((address, timeout))
        raise OSError("Name or service not known")

    fresh.setattr(hub.socket, "create_connection", refuse)
    assert hub.hub_reachable() is False and hub.hub_reachable() is False
    assert attempts == [(("huggingface.co", 443), hub.CONNECT_TIMEOUT)]  # asked once per process


def test_hub_model_without_hub_fails_at_once_naming_the_local_options(fresh):
    from finetune.model import load_model

    fresh.delenv("HF_HUB_OFFLINE", raising=False)
    fresh.delenv("TRANSFORMERS_OFFLINE", raising=False)
    fresh.setattr(hub, "_connects", lambda timeout: False)
    with pytest.raises(EvalkitError) as exc:
        load_model("openai-community/gpt2-not-cached-anywhere")
    message = str(exc.value)
    assert "could not load 'openai-community/gpt2-not-cached-anywhere' from the Hugging Face Hub" in message
    assert "--init random --model-size" in message and "--model DIR" in message
