"""A loopback server that speaks the OpenAI chat completions API, for tests and benchmarks.

The *real* official ``openai`` client runs against it offline. It binds 127.0.0.1 on a random
port, serves from a daemon thread and stops when the context manager (or fixture) exits; it
shares scripting (:class:`Reply`, :class:`Token`, :class:`Fault`), fault injection, latency,
request bounds and counting with :class:`tests.judge.fake_ollama.FakeOllama`.

Endpoints, as vLLM / OpenAI answer them:

* ``GET /v1/models``: ``{"object": "list", "data": [{"id", "object": "model", "owned_by",
  "root", "max_model_len"}]}`` (``root`` and ``max_model_len`` are vLLM's additions);
* ``POST /v1/chat/completions`` (non-streamed): ``temperature``, ``top_p``, ``seed``,
  ``max_tokens``; ``logprobs``/``top_logprobs`` returned as ``choices[0].logprobs.content``
  (one ``{"token", "logprob", "bytes", "top_logprobs"}`` per token); ``response_format``
  ``{"type": "json_schema", "json_schema": {"schema": ...}}`` (refused with 400 when
  ``supports_response_format=False``, as servers without structured outputs do).

Errors use OpenAI's body, ``{"error": {"message", "type", "code"}}``: 401 for a missing or
wrong key (when ``api_key`` is set; the message never repeats the key), 404 for an unknown
model, and injected statuses (429, 500, ...), delays, garbage bodies and dropped connections.

``python -m tests.judge.fake_openai [--latency S] [--api-key-env NAME]`` serves it in the foreground.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from tests.judge.fake_ollama import FakeOllama, Fault, Reply, Request, Token, _Handler, serve_in_foreground

__all__ = ["FakeOpenAI", "Fault", "OpenAIRequest", "Reply", "Token"]


class OpenAIRequest(Request):
    """A chat completion request as the server received it (same properties as Ollama's)."""

    @property
    def format(self) -> Any:
        rf = self.body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            return (rf.get("json_schema") or {}).get("schema")
        return rf

    @property
    def options(self) -> dict[str, Any]:
        return {k: self.body[k] for k in ("temperature", "top_p", "seed", "max_tokens") if k in self.body}

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


def _error(message: str, kind: str, code: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _OpenAIHandler(_Handler):
    def _authorised(self) -> bool:
        key = self.fake.api_key  # type: ignore[attr-defined]
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        return False

    def do_GET(self) -> None:  # noqa: N802 - stdlib's name
        self.fake._record(self.path, {})
        if self.path == "/_fake/counts":
            with self.fake._lock:
                self._send_json(200, dict(self.fake._counts))
            return
        if not self._authorised():
            return
        if self.path == "/v1/models":
            data = [{"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "vllm",
                     "root": info["root"], "max_model_len": info["context_length"]} for name, info in self.fake.models.items()]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, _error(f"unknown path {self.path}", "NotFoundError", 404))

    def do_POST(self) -> None:  # noqa: N802 - stdlib's name
        body = self._read_body()
        if body is None:
            return
        self.fake._record(self.path, body)
        if not self._authorised():
            return
        if self.path != "/v1/chat/completions":
            self._send_json(404, _error(f"unknown path {self.path}", "NotFoundError", 404))
            return
        self._complete(body)

    def _complete(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = str(body.get("model") or "")
        if fake._find(model) is None:
            self._send_json(404, _error(f"The model `{model}` does not exist.", "NotFoundError", 404))
            return
        if "response_format" in body and not fake.supports_response_format:  # type: ignore[attr-defined]
            self._send_json(400, _error("response_format is not supported by this server", "BadRequestError", 400))
            return
        if not fake._admit():
            self._send_json(503, _error("fake server: request limit reached", "ServiceUnavailable", 503))
            return
        fault = fake._next_fault()
        fake._sleep(fake.latency + (fault.delay if fault else 0.0))
        if fault and fault.drop:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault and fault.status:
            self._send_json(fault.status, _error(fault.error, "InjectedError", fault.status))
            return
        if fault and fault.garbage:
            payload = b"<html>\x00 not json {"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        request = fake._request("/v1/chat/completions", body)
        reply = fake._answer(request)
        tokens = reply.token_list()
        with_logprobs = bool(body.get("logprobs")) and reply.logprobs and fake.supports_logprobs
        prompt_tokens = reply.prompt_eval_count
        if prompt_tokens is None:
            prompt_tokens = max(1, len(request.prompt) // 4)
        logprobs = None
        if with_logprobs:
            logprobs = {"content": [t.as_json(int(body.get("top_logprobs") or 0)) for t in tokens], "refusal": None}
        self._send_json(200, {
            "id": f"chatcmpl-{fake.judge_calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "".join(t.text for t in tokens)},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                      "total_tokens": prompt_tokens + len(tokens)},
        })


class FakeOpenAI(FakeOllama):
    """The loopback OpenAI-compatible server. ``models`` maps model ids to optional info
    (``root``, ``context_length``); ``api_key`` (when set) is required as a Bearer token;
    ``url`` is the base URL ending in ``/v1``."""

    handler_class = _OpenAIHandler
    judge_paths = ("/v1/chat/completions",)

    def __init__(self, models: Any = None, *, api_key: str | None = None, supports_response_format: bool = True,
                 **kwargs: Any):
        self.api_key = api_key
        self.supports_response_format = supports_response_format
        super().__init__(models, **kwargs)

    def add_model(self, name: str, *, root: str | None = None, context_length: int = 8192, **_: Any) -> None:
        self.models[name] = {"root": root or f"/models/{name}", "context_length": context_length}

    def _find(self, name: str) -> dict[str, Any] | None:
        return self.models.get(name) if name else None

    def _request(self, path: str, body: dict[str, Any]) -> Request:
        return OpenAIRequest(path, str(body.get("model") or ""), body)

    @property
    def root(self) -> str:
        """The server's address without ``/v1``."""
        return super().url

    @property
    def url(self) -> str:
        return super().url + "/v1"


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.judge.fake_openai``: serve in the foreground (benchmarks, manual runs).

    Prints the base URL on the first line, answers score requests with ``{"score": N}`` and
    pairwise ones with a weighted one-token verdict, and exits when stdin closes or after
    ``--max-seconds``.
    """
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m tests.judge.fake_openai", description=main.__doc__)
    parser.add_argument("--model", action="append", help="model id to serve (repeatable; default llama3)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every judge request")
    parser.add_argument("--score", type=int, default=50, help="score given to score requests")
    parser.add_argument("--api-key-env", help="require the key held by this environment variable")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long at most")
    args = parser.parse_args(argv)
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    server = FakeOpenAI(models=args.model or ["llama3"], latency=args.latency, api_key=key)
    server.script(lambda req: {"score": args.score} if isinstance(req.format, dict) and "score" in json.dumps(req.format)
                  else Reply(tokens=[Token("2", math.log(0.7), {"1": math.log(0.3)})]))
    serve_in_foreground(server, args.max_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
