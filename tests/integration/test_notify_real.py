"""Real apprise ``json://`` pages to an HTTP server this test runs on loopback.

Three targets: one that answers at once, one that is slow (its handler holds
the answer until the test ends), one that is dead (a bound, non-listening
loopback port: connection refused). The good target's page must arrive
promptly, ``send()`` must return at once, and the failures must be counted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.incidents import make_incident
from tests.integration.harness.requires import wait_for
from watcher.responders.base import Outcome
from watcher.responders.notify.delivery import Notifier
from watcher.responders.notify.text import render_page

pytestmark = [
    pytest.mark.integration,
    # apprise's e-mail plugin imports the deprecated imghdr module when its plugins load.
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]

LOOPBACK = "127.0.0.1"
TIMEOUT = 0.5  # per-send timeout given to the notifier: the slow target exceeds it

INCIDENT = make_incident(
    id="20111016T085552Z-forwarding-loop",
    rule="forwarding-loop",
    description="null-sender bounces relayed to a remote host",
    count=1000,
    threshold=100,
    window_seconds=300.0,
    first_time="2011-10-16T17:52:52+09:00",
    trip_time="2011-10-16T17:55:52+09:00",
    trip_line=(
        "Oct 16 17:55:52 mx postfix/smtp[4242]: 1A2B3C4D5E: "
        "to=<\"$(touch /tmp/pwned)\"`id`;'q'@lists.example.org>, relay=mx.example.org[192.0.2.7]:25, "
        "dsn=2.0.0, status=sent (250 2.0.0 <b>ok</b> & *done*)"
    ),
    top_domains=(("lists.example.org", 612), ("ml.example.net", 388)),
    host="mx1",
)


@dataclass
class Received:
    path: str
    payload: dict[str, object]
    at: float


@dataclass
class Server:
    port: int
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"json://{LOOPBACK}:{self.port}/{path}"

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == f"/{path}"]


@pytest.fixture
def server() -> Iterator[Server]:
    state: list[Server] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            srv = state[0]
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length))
            if self.path == "/slow":
                srv.release.wait(10)  # answers only once the test is over
            with srv.lock:
                srv.received.append(Received(self.path, payload, time.monotonic()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    httpd.daemon_threads = True
    state.append(Server(httpd.server_address[1]))
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="test-http", daemon=True
    )
    thread.start()
    try:
        yield state[0]
    finally:
        state[0].release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback port that is bound but never listens: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield f"json://{LOOPBACK}:{sock.getsockname()[1]}/dead"


def test_page_arrives_promptly_while_slow_and_dead_targets_fail_on_their_own(
    server: Server, dead_url: str
) -> None:
    notifier = Notifier(
        [server.url("slow"), dead_url, server.url("good")],
        retries=1,
        backoff=0.2,
        timeout=TIMEOUT,
    )
    notifier.start()
    try:
        title, body = render_page(
            INCIDENT, [Outcome("freeze-postfix", True, "soft_bounce=yes, defer_transports=smtp")]
        )
        sent_at = time.monotonic()
        notifier.send(title, body, "failure")
        returned_in = time.monotonic() - sent_at
        assert returned_in < 0.1, f"send() took {returned_in:.3f}s"

        good = wait_for(lambda: server.on("good"), 5.0, "the page at the good target")
        latency = good[0].at - sent_at
        assert latency < TIMEOUT, f"the good target waited for the others: {latency:.2f}s"
        assert good[0].payload["title"] == title
        assert good[0].payload["message"] == body  # verbatim, addresses and all
        assert good[0].payload["type"] == "failure"
        assert INCIDENT.trip_line in str(good[0].payload["message"]).splitlines()

        # A second page reaches the good target while the slow one still hangs.
        notifier.send("second", "still tripped", "warning")
        wait_for(lambda: len(server.on("good")) == 2, 5.0, "the second page at the good target")
        assert server.on("slow") == []

        def settled() -> bool:
            counts = {t.url.split("/")[3].split("?")[0]: t for t in notifier.results().targets}
            return counts["dead"].failed == 2 and counts["slow"].failed == 2

        # Two pages, two attempts each, each attempt bounded by TIMEOUT, retried 0.2 s later.
        wait_for(settled, 10.0, "both failing targets to give up both pages", seen=notifier.results)
    finally:
        server.release.set()
        notifier.stop(5.0)
    targets = {t.url.split("/")[3].split("?")[0]: t for t in notifier.results().targets}
    assert (targets["good"].sent, targets["good"].failed) == (2, 0)
    assert (targets["dead"].sent, targets["dead"].failed, targets["dead"].retried) == (0, 2, 2)
    assert "connection" in targets["dead"].last_error.lower()
    assert (targets["slow"].sent, targets["slow"].failed, targets["slow"].retried) == (0, 2, 2)
    assert targets["slow"].last_error == f"no answer within {TIMEOUT:g} s"


def test_send_now_reports_each_target_with_secrets_redacted(server: Server, dead_url: str) -> None:
    good = f"json://stormwatch:hunter2@{LOOPBACK}:{server.port}/good"
    notifier = Notifier([good, dead_url], timeout=TIMEOUT)
    started = time.monotonic()
    results = notifier.send_now("stormwatch test", "test page", "info")
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert [(ok, bool(error)) for _url, ok, error in results] == [(True, False), (False, True)]
    assert all("hunter2" not in url for url, _ok, _error in results)
    assert results[0][0].startswith(f"json://stormwatch:****@{LOOPBACK}:{server.port}/good")
    assert "connection" in results[1][2].lower(), results[1][2]
    assert [r.payload["title"] for r in server.on("good")] == ["stormwatch test"]
