"""What every judge backend shares: hosts, preflight bookkeeping, retries, the answer cache.

A backend (one module each: :mod:`.ollama`, :mod:`.openai`) implements three methods:

* ``_check_host(host)`` -> ``(identity, context_length)``: the host answers and serves the
  judge model; ``identity`` names that exact model independently of the host (Ollama: the
  digest; OpenAI-compatible: the served model's id and root), so replicas must agree on it;
* ``_send_once(host, request)`` -> :class:`Answer`: one request, raising :class:`Retryable`
  for what is worth retrying (connection errors, timeouts, unreadable bodies, 429, 5xx) and
  :class:`JudgeServerError` for what is not;
* ``describe_start()``: how to start such a server (for the "cannot reach" message).

A request is backend-neutral: ``messages``, ``options`` (``seed``, ``temperature``,
``top_p``, ``num_ctx``, ``num_predict``: Ollama's names; each backend maps them), ``format``
(a JSON schema or None), ``logprobs``/``top_logprobs`` and ``stream``.

Cache: answers are stored in the results store under a key made of the backend, the judge
model and its identity, the template hash and the full request, never the host or a key, so
a re-run sends no judge requests and replicas share answers; ``refresh`` bypasses the lookup.

Retries: tenacity, exponential backoff with jitter (``retry_backoff`` * 2^attempt, capped,
plus up to ``retry_backoff`` of random jitter), each retry on another host when there is one;
Ctrl-C (the ``stop`` event) ends a wait at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from evalkit.errors import EvalkitError
from evalkit.store import ResultsStore, content_hash


class JudgeServerError(EvalkitError):
    """The judge server refused a request, or kept failing after all retries."""


class CacheMiss(Exception):
    """Raised instead of sending a request while :meth:`JudgeProvider.cache_only` is on."""


class Retryable(Exception):
    """A failure worth another attempt (the message says what happened, never a secret)."""


@dataclass
class ModelInfo:
    name: str
    digest: str | None  # the host-independent identity of the judge model
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


class JudgeProvider:
    """Judge requests spread over one or more hosts of one backend; thread-safe."""

    backend = ""

    def __init__(
        self,
        model: str,
        hosts: list[str],
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
        self.hosts = hosts
        self.store = store
        self.cache_scope = dict(cache_scope or {})
        self.refresh = refresh
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = CallStats()
        self.stop = stop or threading.Event()
        self.info: ModelInfo | None = None
        self._in_flight = dict.fromkeys(self.hosts, 0)
        self._turn = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(multiplier=self.backoff, max=self.max_backoff, jitter=self.backoff),
            retry=retry_if_exception_type(Retryable),
            sleep=self._sleep,
            before_sleep=lambda _state: self.stats.add(retries=1),
        )

    # -- what a backend implements ---------------------------------------------------------

    def _check_host(self, host: str) -> tuple[str | None, int | None]:
        raise NotImplementedError

    def _send_once(self, host: str, request: dict[str, Any]) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        """Close the backend's connections."""

    # -- preflight -------------------------------------------------------------------------

    def preflight(self) -> ModelInfo:
        """Check every host and the judge model; returns (and keeps) the model's identity."""
        identities: dict[str, str | None] = {}
        context_length = None
        for host in self.hosts:
            identity, length = self._check_host(host)
            identities[host] = identity
            if length is not None:
                context_length = length if context_length is None else min(context_length, length)
        if len(set(identities.values())) > 1:
            listing = ", ".join(f"{h}: {(d or '?')[:24]}" for h, d in identities.items())
            raise JudgeServerError(
                f"the hosts serve different builds of {self.model} ({listing}); judge with one build so the "
                "results are comparable"
            )
        self.info = ModelInfo(self.model, next(iter(identities.values())), context_length, list(self.hosts))
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
        identity = self.info.digest if self.info else None
        parts = {"model": self.model, "digest": identity, "scope": self.cache_scope, "request": request}
        if self.backend != "ollama":  # Ollama's keys stay as they were, so its caches stay warm
            parts["backend"] = self.backend
        return "judge:" + content_hash(parts, length=40)

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
        key = self.cache_key(request)
        if self.store is not None and not self.refresh:
            hit = self.store.cache_get(key)
            if hit is not None:
                self.stats.add(cache_hits=1)
                return Answer(**hit, cached=True)
        if getattr(self._local, "cache_only", False):
            raise CacheMiss(key)
        # streaming changes how the answer travels, not the answer: not part of the cache key
        answer = self._send({**request, "stream": True} if stream else request)
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

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise JudgeServerError("stopped while waiting to retry")

    def _send(self, request: dict[str, Any]) -> Answer:
        failed: list[str | None] = [None]

        def attempt() -> Answer:
            if self.stop.is_set():
                raise JudgeServerError("stopped before the request was sent")
            host = self._pick_host(failed[0])
            self.stats.add(calls=1)
            try:
                return self._send_once(host, request)
            except Retryable as exc:
                failed[0] = host
                raise Retryable(f"{host}: {exc}") from exc
            finally:
                self._release(host)

        try:
            return self._retrying.copy()(attempt)  # a copy per request: its statistics are per call
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise JudgeServerError(f"judge request failed after {self.retries + 1} attempts; last error: {last}") from last
