"""``stormwatch run`` as a real process under a fake systemd: notify, watchdog, SIGHUP, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import logshapes as L
from tests.integration.harness.requires import wait_for


class NotifySocket:
    """The datagram socket systemd would listen on; collects what the service says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def drain(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                break
            self.messages.append((time.monotonic(), data.decode()))
        return [m for _, m in self.messages]

    def wait(self, text: str, timeout: float, after: int = 0) -> int:
        """Wait for a message containing ``text`` beyond the first ``after``; its index."""

        def found() -> int | None:
            msgs = self.drain()
            for i in range(after, len(msgs)):
                if text in msgs[i]:
                    return i + 1
            return None

        index = wait_for(found, timeout, f"{text!r} on the notify socket", seen=self.drain)
        assert index is not None
        return index

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_notify_watchdog_reload_and_stop(tmp_path: Path, notify_socket: NotifySocket) -> None:
    log = tmp_path / "mail.log"
    log.write_text(L.removed(0, "AAAAAA0001") + "\n")
    state = tmp_path / "state"
    config = tmp_path / "stormwatch.toml"
    config.write_text(f'state_dir = "{state}"\ntimezone = "UTC"\n')
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_socket.path),
        "WATCHDOG_USEC": "3000000",  # ping every 1.5 s at most; ticks come every 2 s
    }
    out = tmp_path / "out.txt"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--dry-run", "--config", str(config),
             "--source", f"file:{log}"],
            stdout=f, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        n = notify_socket.wait("READY=1", 20)
        notify_socket.wait("STATUS=armed", 10, n)
        first = notify_socket.wait("WATCHDOG=1", 10, n)
        notify_socket.wait("WATCHDOG=1", 10, first)  # and again: pinged from the loop

        # the pipeline runs: a storm trips the (dry-run) switch
        lines: list[str] = []
        for i in range(5):
            lines += L.storm_message(i / 5, i, "list-bounces@lists.example.org")
        with log.open("a") as f:
            f.write("\n".join(lines) + "\n")
        wait_for(
            lambda: "DRY RUN [trip] contain-postfix" in out.read_text(), 20, "the dry-run trip"
        )
        notify_socket.wait("STATUS=tripped", 10)

        # SIGHUP with a valid new config: reloaded, still tripped (the latch survives)
        mark = len(notify_socket.drain())
        config.write_text(config.read_text() + "[correlate]\nmax_open = 1000\n")
        proc.send_signal(signal.SIGHUP)
        n = notify_socket.wait("RELOADING=1", 10, mark)
        notify_socket.wait("READY=1", 10, n)
        wait_for(lambda: "reloaded:" in out.read_text(), 10, "the reload message")
        notify_socket.wait("STATUS=tripped", 10, n)

        # SIGHUP with an invalid config: refused with the reason, still running
        mark = len(notify_socket.drain())
        config.write_text(config.read_text().replace("max_open = 1000", "max_opn = 1000"))
        proc.send_signal(signal.SIGHUP)
        notify_socket.wait("READY=1", 10, mark)
        wait_for(lambda: "reload refused" in out.read_text(), 10, "the refusal")
        assert "max_opn" in out.read_text()
        assert proc.poll() is None

        # SIGHUP with a [command] argv that check-config refuses: refused the same way
        mark = len(notify_socket.drain())
        config.write_text(
            config.read_text().replace("max_opn = 1000", "max_open = 1000")
            + '[command]\nargv = ["/bin/echo", "{0.__class__}"]\n'
        )
        proc.send_signal(signal.SIGHUP)
        notify_socket.wait("READY=1", 10, mark)
        wait_for(lambda: "command.argv[1]" in out.read_text(), 10, "the argv refusal")
        assert out.read_text().count("reload refused") == 2
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "STOPPING=1" in notify_socket.drain()
    checkpoints = list((state / "sources").glob("file-*.json"))
    assert len(checkpoints) == 1
    saved = json.loads(checkpoints[0].read_text())
    assert saved["file"]["offset"] == log.stat().st_size, saved
