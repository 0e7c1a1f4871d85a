"""A loopback server that speaks Ollama's documented HTTP API, for tests and benchmarks.

It lets the *real* official ``ollama`` client (and anything built on it) run offline: nothing
is mocked on the client side. The server binds 127.0.0.1 on a random port, serves from a
daemon thread and stops when the context manager (or the ``fake_ollama`` fixture) exits.

Endpoints (https://github.com/ollama/ollama/blob/main/docs/api.md):
``GET /api/version``, ``GET /api/tags``, ``POST /api/show``, ``POST /api/chat`` and
``POST /api/generate`` (streamed as NDJSON or not, per the request's ``stream``; Ollama's
default is to stream), with ``format`` (``"json"`` or a JSON schema), ``options`` and
``logprobs``/``top_logprobs`` returned as Ollama 0.12.11+ does: a top-level ``logprobs`` list
with one ``{"token", "logprob", "bytes", "top_logprobs": [...]}`` entry per generated token.
Unknown models get ``404 {"error": "model 'x' not found"}``, as Ollama answers.

Usage::

    from tests.judge.fake_ollama import FakeOllama, Reply, Token

    with FakeOllama(models={"llama3": {}}) as server:
        client = ollama.Client(server.url)
        server.script(lambda req: Reply(json={"score": 80}))      # every answer
        server.script(lambda req: Reply(tokens=[Token("2", -0.2, {"1": -1.8})]))  # a weighted verdict
        server.inject(Fault(status=500), Fault(delay=2.0))          # next two judge requests fail
        ...
        server.count("/api/chat")                                   # judge calls served

The script function receives a :class:`Request` (path, model, messages, prompt, format,
options, logprobs, top_logprobs, stream, the raw body) and returns a :class:`Reply`, a
string, or a dict (sent as JSON text). Without a script the server answers with a minimal
instance of the requested ``format`` schema (or ``"ok"``).

Faults (:class:`Fault`) are consumed one per judge request (chat/generate), in order:
an HTTP status with an ``{"error": ...}`` body, a delay (for client timeouts), a garbage
body, or a dropped connection. ``latency`` adds a fixed delay to every judge request.

``python -m tests.judge.fake_ollama [--latency S] [--score N]`` serves it in the foreground (for
benchmarks and trying ``evalkit judge --host URL`` by hand); ``GET /_fake/counts`` (not part of
Ollama's API) returns the request counts per path, for a server in another process.

Every loop here is bounded: requests are capped (``max_requests``), delays are capped
(``MAX_DELAY``) and interrupted by :meth:`FakeOllama.stop`, a stream has as many chunks as
the reply has tokens, and handler sockets time out.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_DELAY = 30.0  # seconds; no injected delay or latency sleeps longer
DEFAULT_VERSION = "0.12.11"  # first Ollama release that returns logprobs
_TOKEN_RE = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


@dataclass
class Token:
    """One generated token: its text, its logprob and the alternatives (token -> logprob).

    The token itself is always listed first among ``top_logprobs``; ``alternatives`` follow
    in the order given, and the list is cut to the request's ``top_logprobs``.
    """

    text: str
    logprob: float = 0.0
    alternatives: dict[str, float] = field(default_factory=dict)

    def as_json(self, top_n: int) -> dict[str, Any]:
        tops = [(self.text, self.logprob)] + [(t, lp) for t, lp in self.alternatives.items() if t != self.text]
        return {
            "token": self.text,
            "logprob": self.logprob,
            "bytes": list(self.text.encode("utf-8")),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in tops[: max(0, top_n)]
            ],
        }


@dataclass
class Reply:
    """What the fake model answers. Give ``content`` (text), ``json`` (any value, sent as JSON
    text) or ``tokens`` (a list of :class:`Token`, whose texts make the content).
    ``logprobs=False`` leaves logprobs out even when asked (like a server before 0.12.11)."""

    content: str | None = None
    json: Any = None
    tokens: list[Token] | None = None
    logprobs: bool = True
    prompt_eval_count: int | None = None

    def token_list(self) -> list[Token]:
        if self.tokens is not None:
            return list(self.tokens)
        text = self.content if self.content is not None else json.dumps(self.json)
        return [Token(t) for t in _TOKEN_RE.findall(text)] or [Token("")]


@dataclass
class Fault:
    """A failure served instead of (``status``, ``garbage``, ``drop``) or before (``delay``)
    the next judge request's answer."""

    status: int | None = None
    error: str = "injected failure"
    delay: float = 0.0
    garbage: bool = False
    drop: bool = False


@dataclass
class Request:
    """A judge request as the server received it."""

    path: str
    model: str
    body: dict[str, Any]
    host: str = ""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def prompt(self) -> str:
        """The generate prompt, or all chat message contents joined (for matching in scripts)."""
        if self.path == "/api/generate":
            return str(self.body.get("system") or "") + str(self.body.get("prompt") or "")
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    @property
    def last_user(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return str(users[-1].get("content") or "") if users else self.prompt

    @property
    def format(self) -> Any:
        return self.body.get("format")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.body.get("options") or {})

    @property
    def logprobs(self) -> bool:
        return bool(self.body.get("logprobs"))

    @property
    def top_logprobs(self) -> int:
        return int(self.body.get("top_logprobs") or 0)

    @property
    def stream(self) -> bool:
        return self.body.get("stream", True) is not False  # Ollama streams unless told not to


def schema_instance(schema: Any) -> Any:
    """A minimal value valid for a JSON schema (first enum value, minimum, required fields)."""
    if not isinstance(schema, dict):
        return {}
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: schema_instance(v) for k, v in props.items()}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _canonical(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait on a keep-alive connection at shutdown
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out or hung up mid-answer is expected here (timeout tests)
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds a silent connection is kept
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # keep test output clean

    @property
    def fake(self) -> FakeOllama:
        return self.server.fake  # type: ignore[attr-defined]

    def _send_json(self, status: int, value: Any) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": "invalid JSON body"})
            return None
        if not isinstance(value, dict):
            self._send_json(400, {"error": "request body must be a JSON object"})
            return None
        return value

    def do_GET(self) -> None:  # noqa: N802 - stdlib's name
        self.fake._record(self.path, {})
        if self.path == "/api/version":
            self._send_json(200, {"version": self.fake.version})
        elif self.path == "/api/tags":
            self._send_json(200, {"models": [self.fake._tag(name) for name in self.fake.models]})
        elif self.path == "/_fake/counts":  # not Ollama's: request counts, for a server in another process
            with self.fake._lock:
                self._send_json(200, dict(self.fake._counts))
        elif self.path in ("/", ""):
            body = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._send_json(404, {"error": f"unknown path {self.path}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib's name
        body = self._read_body()
        if body is None:
            return
        self.fake._record(self.path, body)
        if self.path == "/api/show":
            name = str(body.get("model") or body.get("name") or "")
            info = self.fake._find(name)
            if info is None:
                self._send_json(404, {"error": f"model '{name}' not found"})
            else:
                self._send_json(200, self.fake._show(name, info))
        elif self.path in ("/api/chat", "/api/generate"):
            self._judge(body)
        else:
            self._send_json(404, {"error": f"unknown path {self.path}"})

    # -- judge requests -----------------------------------------------------------------------

    def _judge(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = str(body.get("model") or "")
        if not model:
            self._send_json(400, {"error": "model is required"})
            return
        if fake._find(model) is None:
            self._send_json(404, {"error": f"model '{model}' not found"})
            return
        if not fake._admit():
            self._send_json(503, {"error": "fake server: request limit reached"})
            return
        fault = fake._next_fault()
        fake._sleep(fake.latency + (fault.delay if fault else 0.0))
        if fault and fault.drop:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault and fault.status:
            self._send_json(fault.status, {"error": fault.error})
            return
        if fault and fault.garbage:
            payload = b"<html>\x00 not json {"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        request = Request(self.path, model, body, host=fake.url)
        reply = fake._answer(request)
        tokens = reply.token_list()
        with_logprobs = request.logprobs and reply.logprobs and fake.supports_logprobs
        prompt_count = reply.prompt_eval_count
        if prompt_count is None:
            prompt_count = max(1, len(request.prompt) // 4)
        key = "message" if self.path == "/api/chat" else "response"

        def chunk(toks: list[Token], done: bool) -> dict[str, Any]:
            text = "".join(t.text for t in toks)
            out: dict[str, Any] = {"model": model, "created_at": _now()}
            out[key] = {"role": "assistant", "content": text} if key == "message" else text
            if with_logprobs and toks:
                out["logprobs"] = [t.as_json(request.top_logprobs) for t in toks]
            out["done"] = done
            if done:
                out.update(
                    done_reason="stop",
                    total_duration=1000,
                    load_duration=10,
                    prompt_eval_count=prompt_count,
                    prompt_eval_duration=100,
                    eval_count=len(tokens),
                    eval_duration=100,
                )
            return out

        if not request.stream:
            self._send_json(200, chunk(tokens, True))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        parts = [chunk([t], False) for t in tokens] + [chunk([], True)]
        for part in parts:  # bounded: one chunk per token plus the final one
            data = (json.dumps(part) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class FakeOllama:
    """The loopback Ollama server. ``models`` maps names (``"llama3"`` means
    ``"llama3:latest"``) to optional info: ``digest``, ``context_length``, ``family``."""

    handler_class: type[BaseHTTPRequestHandler] = _Handler
    judge_paths: tuple[str, ...] = ("/api/chat", "/api/generate")

    def __init__(
        self,
        models: Iterable[str] | dict[str, dict[str, Any]] | None = None,
        *,
        version: str = DEFAULT_VERSION,
        supports_logprobs: bool = True,
        latency: float = 0.0,
        max_requests: int = 100_000,
    ):
        models = {"llama3": {}} if models is None else models
        if not isinstance(models, dict):
            models = {name: {} for name in models}
        self.models: dict[str, dict[str, Any]] = {}
        for name, info in models.items():
            self.add_model(name, **(info or {}))
        self.version = version
        self.supports_logprobs = supports_logprobs
        self.latency = latency
        self.max_requests = max_requests
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._script: Callable[[Request], Reply | str | dict | None] | None = None
        self._counts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._judge_requests = 0

    # -- configuration --------------------------------------------------------------------------

    def add_model(self, name: str, *, digest: str | None = None, context_length: int = 8192, family: str = "llama") -> None:
        import hashlib

        canonical = _canonical(name)
        digest = digest or hashlib.sha256(canonical.encode()).hexdigest()
        self.models[canonical] = {"digest": digest, "context_length": context_length, "family": family}

    def script(self, fn: Callable[[Request], Reply | str | dict | None] | None) -> None:
        """Set the function that answers judge requests (``None``: schema-minimal answers)."""
        self._script = fn

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each judge request consumes the next one."""
        with self._lock:
            self._faults.extend(faults)

    # -- observation ----------------------------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        """Requests received on ``path`` (all paths when None), faults included."""
        with self._lock:
            return sum(self._counts.values()) if path is None else self._counts.get(path, 0)

    @property
    def judge_calls(self) -> int:
        """Judge requests received (Ollama: chat plus generate)."""
        return sum(self.count(path) for path in self.judge_paths)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self.requests.clear()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOllama is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOllama:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), self.handler_class)
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-ollama", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on injected delays
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler --------------------------------------------------------------------

    def _record(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1
            if path in self.judge_paths:
                self.requests.append(self._request(path, body))

    def _request(self, path: str, body: dict[str, Any]) -> Request:
        return Request(path, str(body.get("model") or ""), body)

    def _admit(self) -> bool:
        with self._lock:
            self._judge_requests += 1
            return self._judge_requests <= self.max_requests

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(min(seconds, MAX_DELAY))

    def _find(self, name: str) -> dict[str, Any] | None:
        return self.models.get(_canonical(name)) if name else None

    def _tag(self, name: str) -> dict[str, Any]:
        info = self.models[name]
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-11-01T00:00:00Z",
            "size": 4_661_224_676,
            "digest": info["digest"],
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": info["family"],
                "families": [info["family"]],
                "parameter_size": "8.0B",
                "quantization_level": "Q4_0",
            },
        }

    def _show(self, name: str, info: dict[str, Any]) -> dict[str, Any]:
        family = info["family"]
        return {
            "modelfile": f"FROM {name}",
            "parameters": "stop \"<|eot_id|>\"",
            "template": "{{ .Prompt }}",
            "details": self._tag(_canonical(name))["details"],
            "model_info": {"general.architecture": family, f"{family}.context_length": info["context_length"]},
            "capabilities": ["completion"],
            "modified_at": "2025-11-01T00:00:00Z",
        }

    def _answer(self, request: Request) -> Reply:
        value = self._script(request) if self._script else None
        if value is None:
            fmt = request.format
            if isinstance(fmt, dict):
                return Reply(json=schema_instance(fmt))
            return Reply(json={}) if fmt == "json" else Reply(content="ok")
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return Reply(content=value)
        return Reply(json=value)


def logprob(p: float) -> float:
    """ln(p), with 0 mapped to a very small logprob: for writing scripted ``Token`` alternatives."""
    return math.log(p) if p > 0 else -1e4


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (a bounded loop for tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def serve_in_foreground(server: FakeOllama, max_seconds: float) -> None:
    """Print the server's URL on the first line, then serve until stdin closes or ``max_seconds``."""
    import sys

    with server:
        print(server.url, flush=True)
        done = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        done.wait(max_seconds)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.judge.fake_ollama``: serve in the foreground (benchmarks, manual runs).

    Prints the URL on the first line, answers every judge request with a fixed verdict (a
    score through a ``format`` schema, else a weighted one-token verdict), and exits when
    stdin closes or after ``--max-seconds``.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.judge.fake_ollama", description=main.__doc__)
    parser.add_argument("--model", action="append", help="model to serve (repeatable; default llama3)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every judge request")
    parser.add_argument("--score", type=int, default=50, help="score given to score requests")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long at most")
    args = parser.parse_args(argv)
    server = FakeOllama(models=args.model or ["llama3"], latency=args.latency)
    server.script(lambda req: {"score": args.score} if isinstance(req.format, dict) and "score" in json.dumps(req.format)
                  else {"better": "2"} if req.format else Reply(tokens=[Token("2", math.log(0.7), {"1": math.log(0.3)})]))
    serve_in_foreground(server, args.max_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
