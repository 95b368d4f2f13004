"""A loopback stand-in for an OpenAI-compatible model provider (the one double these tests
use: feedloop is never faked). It answers ``POST /v1/chat/completions`` with a fixed answer,
as JSON or as a server-sent event stream, and keeps every request body it got."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "Visit a branch with your ID card to reset it."


class Upstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = False
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                upstream.requests.append(body)
                if upstream.fail_next:
                    upstream.fail_next = False
                    self._json(500, {"error": {"message": "upstream broke", "type": "server_error"}})
                elif body.get("stream"):
                    self._stream(body)
                else:
                    self._json(200, completion(body["model"]))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                words = ANSWER.split(" ")
                for index, word in enumerate(words):
                    text = word if index == 0 else f" {word}"
                    self._event(chunk(body["model"], {"content": text}, None))
                self._event(chunk(body["model"], {}, "stop"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": f"{model}-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30},
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": f"{model}-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
