"""Talking to Ollama through the official ``ollama`` client: hosts, preflight, retries, cache.

* Hosts: ``--host`` (repeatable; requests go to the host with the fewest requests in flight),
  else ``OLLAMA_HOST``, else ``http://localhost:11434``.
* Preflight: every host is reachable (``/api/tags``), the judge model is there
  (``/api/show``; 404 -> "run `ollama pull MODEL`"), and all hosts serve the same digest,
  which is recorded (it is part of every cache key).
* Retries: connection errors, timeouts, garbage bodies, 5xx and 429 are retried with
  exponential backoff and jitter, on another host when there is one; any other 4xx fails
  fast with the server's message.
* Cache: answers are stored in the results store under a key made of the judge model, its
  digest, the template hash and the full request (messages, format, options), so a re-run
  sends no judge requests; ``refresh`` bypasses the lookup (answers are still stored).
"""

from __future__ import annotations

import contextlib
import os
import random
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx
import ollama
import pydantic

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore, content_hash

DEFAULT_HOST = "http://localhost:11434"


class JudgeServerError(EvalkitError):
    """The Ollama server refused a request, or kept failing after all retries."""


class CacheMiss(Exception):
    """Raised instead of sending a request while :meth:`OllamaJudgeClient.cache_only` is on."""


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


@dataclass
class ModelInfo:
    name: str
    digest: str | None
    context_length: int | None
    hosts: list[str]


@dataclass
class Answer:
    """One judge answer, from the server or the cache."""

    content: str
    logprobs: list[dict[str, Any]] | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    cached: bool = False

    def as_cache_value(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "logprobs": self.logprobs,
            "prompt_eval_count": self.prompt_eval_count,
            "eval_count": self.eval_count,
        }


@dataclass
class CallStats:
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


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


class OllamaJudgeClient:
    """Judge requests spread over one or more Ollama hosts; thread-safe."""

    def __init__(
        self,
        model: str,
        hosts: list[str] | None = None,
        *,
        store: ResultsStore | None = None,
        cache_scope: dict[str, Any] | None = None,
        refresh: bool = False,
        timeout: float = 300.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        stop: threading.Event | None = None,
    ):
        self.model = model
        self.hosts = resolve_hosts(hosts)
        self.store = store
        self.cache_scope = dict(cache_scope or {})
        self.refresh = refresh
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = CallStats()
        self.stop = stop or threading.Event()
        self.info: ModelInfo | None = None
        self._clients = {
            h: ollama.Client(h, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), verify=_tls_context())
            for h in self.hosts
        }
        self._in_flight = dict.fromkeys(self.hosts, 0)
        self._turn = 0
        self._lock = threading.Lock()
        self._jitter = random.Random()
        self._local = threading.local()

    # -- preflight -------------------------------------------------------------------------

    def preflight(self) -> ModelInfo:
        """Check every host and the judge model; returns (and keeps) the model's digest."""
        digests: dict[str, str | None] = {}
        context_length = None
        for host, client in self._clients.items():
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
            digests[host] = digest
            for key, value in (shown.modelinfo or {}).items():
                if key.endswith(".context_length") and isinstance(value, int):
                    context_length = value if context_length is None else min(context_length, value)
        if len(set(digests.values())) > 1:
            listing = ", ".join(f"{h}: {(d or '?')[:12]}" for h, d in digests.items())
            raise JudgeServerError(
                f"the hosts serve different builds of {self.model} ({listing}); judge with one build so the "
                "results are comparable (`ollama pull` the same tag everywhere)"
            )
        self.info = ModelInfo(self.model, next(iter(digests.values())), context_length, list(self.hosts))
        return self.info

    # -- requests --------------------------------------------------------------------------

    @contextlib.contextmanager
    def cache_only(self) -> Iterator[None]:
        """In this thread, answer from the cache only: a miss raises :class:`CacheMiss`."""
        self._local.cache_only = True
        try:
            yield
        finally:
            self._local.cache_only = False

    def cache_key(self, request: dict[str, Any]) -> str:
        digest = self.info.digest if self.info else None
        return "judge:" + content_hash(
            {"model": self.model, "digest": digest, "scope": self.cache_scope, "request": request}, length=40
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        options: dict[str, Any],
        format: Any = None,  # noqa: A002 - Ollama's name
        logprobs: bool = False,
        top_logprobs: int | None = None,
        stream: bool = False,
    ) -> Answer:
        request: dict[str, Any] = {"endpoint": "chat", "messages": messages, "options": options, "format": format}
        if logprobs:
            request.update(logprobs=True, top_logprobs=top_logprobs)
        if stream:  # the answer is the same; only how it travels differs, so not part of the cache key
            request["stream"] = True
        key = self.cache_key(request)
        if self.store is not None and not self.refresh:
            hit = self.store.cache_get(key)
            if hit is not None:
                self.stats.add(cache_hits=1)
                return Answer(**hit, cached=True)
        if getattr(self._local, "cache_only", False):
            raise CacheMiss(key)
        answer = self._send(request)
        if self.store is not None:
            self.store.cache_put(key, answer.as_cache_value())
        return answer

    def _pick_host(self, avoid: str | None) -> str:
        with self._lock:
            candidates = [h for h in self.hosts if h != avoid] or self.hosts
            self._turn += 1
            # fewest requests in flight; ties broken round-robin so the load spreads evenly
            host = min(candidates, key=lambda h: (self._in_flight[h], (self.hosts.index(h) - self._turn) % len(self.hosts)))
            self._in_flight[host] += 1
            return host

    def _release(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1

    def _send(self, request: dict[str, Any]) -> Answer:
        last_error = "no attempt made"
        failed_host = None
        for attempt in range(self.retries + 1):
            if self.stop.is_set():
                raise JudgeServerError("stopped before the request was sent")
            host = self._pick_host(failed_host)
            try:
                self.stats.add(calls=1)
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
                last_error = f"{host}: HTTP {exc.status_code}: {exc.error}"
            except (ConnectionError, httpx.TransportError) as exc:
                last_error = f"{host}: {type(exc).__name__}: {exc}"
            except (ValueError, pydantic.ValidationError) as exc:  # a body that is not Ollama's JSON
                last_error = f"{host}: unreadable answer ({type(exc).__name__}: {str(exc)[:120]})"
            finally:
                self._release(host)
            failed_host = host
            if attempt < self.retries:
                self.stats.add(retries=1)
                # exponential backoff with "equal jitter": never zero, never synchronised
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                if self.stop.wait(delay / 2 + self._jitter.uniform(0, delay / 2)):
                    raise JudgeServerError("stopped while waiting to retry")
        raise JudgeServerError(f"judge request failed after {self.retries + 1} attempts; last error: {last_error}")

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

