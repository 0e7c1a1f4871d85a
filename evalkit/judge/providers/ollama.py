"""The Ollama backend, through the official ``ollama`` client.

* Hosts: ``--host`` (repeatable; requests go to the host with the fewest requests in flight),
  else ``OLLAMA_HOST``, else ``http://localhost:11434``.
* Preflight: every host is reachable (``/api/tags``), the judge model is there
  (``/api/show``; 404 -> "run `ollama pull MODEL`"), and all hosts serve the same digest,
  which is recorded (it is part of every cache key).
* Requests: ``/api/chat`` with ``options`` as given (``seed``, ``temperature``, ``num_ctx``,
  ``num_predict``, ``top_p``), ``format`` (a JSON schema) and ``logprobs``/``top_logprobs``.
* Errors: connection errors, timeouts, garbage bodies, 5xx and 429 are retried (see
  :mod:`evalkit.judge.providers.base`); any other 4xx fails fast with the server's message.
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache
from typing import Any

import httpx
import ollama
import pydantic

from evalkit.judge.providers.base import Answer, JudgeProvider, JudgeServerError, Retryable

DEFAULT_HOST = "http://localhost:11434"


def resolve_hosts(hosts: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """``hosts`` if given, else ``$OLLAMA_HOST``, else Ollama's default address."""
    chosen = [h for h in (hosts or []) if h] or [os.environ.get("OLLAMA_HOST") or DEFAULT_HOST]
    return list(dict.fromkeys(_normalise_host(h) for h in chosen))


def _normalise_host(host: str) -> str:
    host = host.strip().rstrip("/")
    return host if "://" in host else f"http://{host}"


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # httpx builds (and loads CA certificates into) a new context for every client, ~0.2 s;
    # one per process keeps a cache-warm re-run fast. Same trust store httpx would use.
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _canonical_model(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _plain_logprobs(logprobs: Any) -> list[dict[str, Any]] | None:
    if not logprobs:
        return None
    out = []
    for entry in logprobs:
        tops = [{"token": t.token, "logprob": t.logprob} for t in (entry.top_logprobs or [])]
        out.append({"token": entry.token, "logprob": entry.logprob, "top_logprobs": tops})
    return out


def _streamed_answer(chunks: Any) -> Answer:
    """A streamed answer put together (the book's query_model reads its judge this way)."""
    content: list[str] = []
    logprobs: list[dict[str, Any]] = []
    last = None
    for chunk in chunks:
        content.append(chunk.message.content or "")
        logprobs.extend(_plain_logprobs(chunk.logprobs) or [])
        last = chunk
    return Answer(
        content="".join(content),
        logprobs=logprobs or None,
        prompt_eval_count=last.prompt_eval_count if last is not None else None,
        eval_count=last.eval_count if last is not None else None,
    )


class OllamaJudgeClient(JudgeProvider):
    """Judge requests spread over one or more Ollama hosts; thread-safe."""

    backend = "ollama"

    def __init__(self, model: str, hosts: list[str] | None = None, *, timeout: float = 300.0, **kwargs: Any):
        super().__init__(model, resolve_hosts(hosts), timeout=timeout, **kwargs)
        self._clients = {
            h: ollama.Client(h, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), verify=_tls_context())
            for h in self.hosts
        }

    def _check_host(self, host: str) -> tuple[str | None, int | None]:
        client = self._clients[host]
        try:
            tags = client.list()
        except (ConnectionError, httpx.TransportError) as exc:
            raise JudgeServerError(
                f"cannot reach Ollama at {host} ({type(exc).__name__}); start Ollama with `ollama serve` "
                "(or point --host / OLLAMA_HOST at a running server)"
            ) from exc
        except ollama.ResponseError as exc:
            raise JudgeServerError(f"Ollama at {host} answered /api/tags with {exc.status_code}: {exc.error}") from exc
        except (ValueError, pydantic.ValidationError) as exc:
            raise JudgeServerError(f"{host} does not answer like an Ollama server (/api/tags: {exc})") from exc
        wanted = _canonical_model(self.model)
        digest = next((m.digest for m in tags.models if _canonical_model(m.model or "") == wanted), None)
        try:
            shown = client.show(self.model)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise JudgeServerError(
                    f"judge model {self.model!r} is not available on {host}; run `ollama pull {self.model}`"
                ) from exc
            raise JudgeServerError(f"Ollama at {host} answered /api/show with {exc.status_code}: {exc.error}") from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise JudgeServerError(f"cannot reach Ollama at {host} ({type(exc).__name__})") from exc
        context_length = None
        for key, value in (shown.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                context_length = value if context_length is None else min(context_length, value)
        return digest, context_length

    def _send_once(self, host: str, request: dict[str, Any]) -> Answer:
        try:
            response = self._clients[host].chat(
                model=self.model,
                messages=request["messages"],
                options=request["options"],
                format=request["format"],
                logprobs=request.get("logprobs"),
                top_logprobs=request.get("top_logprobs"),
                stream=bool(request.get("stream")),
            )
            if request.get("stream"):
                return _streamed_answer(response)
            return Answer(
                content=response.message.content or "",
                logprobs=_plain_logprobs(response.logprobs),
                prompt_eval_count=response.prompt_eval_count,
                eval_count=response.eval_count,
            )
        except ollama.ResponseError as exc:
            if exc.status_code != 429 and 400 <= exc.status_code < 500:
                hint = f"; run `ollama pull {self.model}`" if exc.status_code == 404 else ""
                raise JudgeServerError(f"Ollama at {host} refused the request ({exc.status_code}): {exc.error}{hint}") from exc
            raise Retryable(f"HTTP {exc.status_code}: {exc.error}") from exc
        except (ConnectionError, httpx.TransportError) as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, pydantic.ValidationError) as exc:  # a body that is not Ollama's JSON
            raise Retryable(f"unreadable answer ({type(exc).__name__}: {str(exc)[:120]})") from exc

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
