"""A loopback HTTP endpoint recording what apprise's ``json://`` posts to it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .procs import Started
from .requires import wait_for


@dataclass(frozen=True, slots=True)
class Post:
    path: str
    body: dict[str, Any]
    received_mono: float
    received_at: float  # wall clock, for comparing with timestamps other processes wrote


class Webhook(Started):
    """``with Webhook() as hook: url = hook.apprise_url`` ... ``hook.wait_for(1, 10)``."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/"

    def start(self) -> Webhook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if hook.delay:
                    time.sleep(hook.delay)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                with hook._lock:
                    hook.posts.append(Post(self.path, body, time.monotonic(), time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float, *, containing: str = "") -> list[Post]:
        def found() -> list[Post]:
            with self._lock:
                hits = [p for p in self.posts if containing in json.dumps(p.body)]
            return hits if len(hits) >= count else []

        return wait_for(
            found,
            timeout,
            f"{count} post(s) to the webhook containing {containing!r}",
            seen=lambda: [p.body.get("title") for p in self.posts],
        )
