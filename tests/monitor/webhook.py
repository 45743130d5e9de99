"""A webhook receiver on 127.0.0.1: the stand-in chat service of the alert tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Hook:
    """Records each JSON payload and answers ``status``; with ``gate``, answers only once the
    gate is set (a slow service)."""

    def __init__(self, status: int = 200, gate: threading.Event | None = None) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.status = status
        self.gate = gate
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if hook.gate is not None:
                    hook.gate.wait(20)
                hook.payloads.append(body)
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
