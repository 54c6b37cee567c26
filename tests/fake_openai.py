"""An OpenAI-compatible chat completions server on 127.0.0.1 for the agent tests: the only stand-in is the remote
service; the tests drive pydantic-ai's real ``OpenAIChatModel`` and OpenAI provider against it.

``FakeOpenAI(script)`` serves ``POST /v1/chat/completions`` (plain and ``stream: true``) in a thread of the test
process. ``script(request_json, n)`` (``n`` counts requests from 1) returns what to answer:
``{"content": "text"}``, ``{"tool_calls": [("name", {args}), ...]}`` or ``{"status": 429, "retry_after": 2}``;
with ``"hang": seconds`` it answers only after that long (``hanging`` is set when such a request comes).
Every request is counted and kept (``requests``), so a test proves which requests were made and how often.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[dict[str, Any], int], dict[str, Any]]


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request.get("messages", []) if m.get("role") == "tool"]


class FakeOpenAI:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.hanging = threading.Event()  # a request with "hang" has come
        self.released = threading.Event()  # stop() ends the hangs
        self.answered_late: list[int] = []  # hung requests that were answered in the end
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                with fake.lock:
                    fake.requests.append(body)
                    n = len(fake.requests)
                answer = fake.script(body, n)
                if answer.get("hang"):  # a provider that does not answer for this many seconds
                    fake.hanging.set()
                    fake.released.wait(answer["hang"])
                    fake.answered_late.append(n)
                if "status" in answer:
                    headers = {"Retry-After": str(answer["retry_after"])} if "retry_after" in answer else {}
                    return self._json(answer["status"], {"error": {"message": "slow down", "type": "rate"}}, headers)
                if body.get("stream"):
                    return self._stream(answer, n)
                return self._json(200, completion(answer, n))

            def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, answer: dict[str, Any], n: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in chunks(answer, n):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if answer.get("delay"):
                        import time

                        time.sleep(answer["delay"])
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _usage(answer: dict[str, Any], n: int) -> dict[str, int]:
    prompt, completion_tokens = 10 * n, 5
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def _tool_calls(answer: dict[str, Any], n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{n}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in enumerate(answer.get("tool_calls", []))
    ]


def completion(answer: dict[str, Any], n: int) -> dict[str, Any]:
    calls = _tool_calls(answer, n)
    message: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1700000000, "model": "fake-gpt",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": _usage(answer, n),
    }  # fmt: skip


def chunks(answer: dict[str, Any], n: int) -> list[dict[str, Any]]:
    base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": 1700000000, "model": "fake-gpt"}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    text = answer.get("content") or ""
    for word in text.split(" "):
        piece = word if word == text.split(" ")[0] else " " + word
        out.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    for i, call in enumerate(_tool_calls(answer, n)):
        delta = {"tool_calls": [{"index": i, **call}]}
        out.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    finish = "tool_calls" if answer.get("tool_calls") else "stop"
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    out.append({**base, "choices": [], "usage": _usage(answer, n)})
    return out
