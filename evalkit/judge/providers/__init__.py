"""Judge backends behind one small interface (:class:`JudgeProvider`): ``ollama`` (the native
API, official ``ollama`` client) and ``openai`` (any OpenAI-compatible server, official
``openai`` client). The runner only calls ``preflight``, ``chat``, ``cache_only`` and ``close``."""

from __future__ import annotations

from typing import Any

from evalkit.errors import InputError
from evalkit.judge.providers.base import (
    Answer,
    CacheMiss,
    JudgeProvider,
    JudgeServerError,
    ModelInfo,
)

BACKENDS = ("ollama", "openai")


def make_provider(backend: str, model: str, hosts: list[str] | None = None, *, api_key_env: str | None = None,
                  **kwargs: Any) -> JudgeProvider:
    """The judge client of ``backend`` for ``model`` on ``hosts`` (``kwargs``: cache, retries, timeout)."""
    if backend == "ollama":
        if api_key_env:
            raise InputError("--api-key-env goes with --backend openai", field="api-key-env")
        from evalkit.judge.providers.ollama import OllamaJudgeClient

        return OllamaJudgeClient(model, hosts, **kwargs)
    if backend == "openai":
        from evalkit.judge.providers.openai import OpenAIJudgeClient

        return OpenAIJudgeClient(model, hosts, api_key_env=api_key_env, **kwargs)
    raise InputError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}", field="backend")


__all__ = ["BACKENDS", "Answer", "CacheMiss", "JudgeProvider", "JudgeServerError", "ModelInfo", "make_provider"]
