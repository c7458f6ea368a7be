"""A private ``redis-server`` on a free loopback port, its files under a temp directory.

``with RedisServer(folder) as r: r.url`` ... ``r.kill()`` (SIGKILL, as a crash)
and ``r.start()`` again on the same port. No persistence: a restarted server
is empty, as a crashed one without AOF would be.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Self

from .procs import LOOPBACK, Started, free_port
from .requires import require_programs, wait_for


class RedisServer(Started):
    def __init__(self, folder: Path, *, password: str = "") -> None:
        self.folder = folder
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    def start(self) -> Self:
        program = require_programs("redis-server")["redis-server"]
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            program, "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.folder),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.starts += 1
        out = open(self.folder / f"redis-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        wait_for(self._answers, 10, f"redis-server on {LOOPBACK}:{self.port} to answer PING")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as sock:
                auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
                sock.sendall(auth + b"PING\r\n")
                return b"PONG" in sock.recv(256) or b"PONG" in sock.recv(256)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: Redis gone at once, its data with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
