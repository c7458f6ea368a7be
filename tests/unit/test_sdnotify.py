"""The systemd notify protocol against a real AF_UNIX datagram socket the test binds."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watcher.runtime.sdnotify import SystemdNotify, WatchdogPinger, socket_address


class Receiver:
    """A bound datagram socket standing in for systemd's notify socket."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self) -> str:
        data = self.sock.recv(4096)  # blocking, bounded by the socket timeout
        return data.decode()

    def pending(self) -> list[str]:
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out
        finally:
            self.sock.settimeout(5.0)


@pytest.fixture
def path_receiver() -> Iterator[Receiver]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sdn-") as d:
        path = str(Path(d) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5.0)
        try:
            yield Receiver(sock, path)
        finally:
            sock.close()


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    name = f"stormwatch-test-{os.getpid()}-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        yield Receiver(sock, "@" + name)
    finally:
        sock.close()


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest) -> Receiver:
    r: Receiver = request.getfixturevalue(f"{request.param}_receiver")
    return r


@pytest.fixture
def make_notify() -> Iterator[type[SystemdNotify]]:
    """SystemdNotify, closed at the end of the test (its socket is a real one)."""
    made: list[SystemdNotify] = []

    class Closing(SystemdNotify):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    yield Closing
    for n in made:
        n.close()


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def test_ready_status_stopping_reach_the_socket(
    make_notify: type[SystemdNotify], receiver: Receiver
) -> None:
    n = make_notify({"NOTIFY_SOCKET": receiver.env_value})
    assert n.enabled
    assert n.ready()
    assert receiver.recv() == "READY=1"
    assert n.status("armed, 120 lines/s,\nlast event 17:52:52")
    assert receiver.recv() == "STATUS=armed, 120 lines/s, last event 17:52:52"
    assert n.watchdog()
    assert receiver.recv() == "WATCHDOG=1"
    assert n.stopping()
    assert receiver.recv() == "STOPPING=1"
    assert n.sent == 4


def test_reloading_carries_monotonic_usec(
    make_notify: type[SystemdNotify], receiver: Receiver
) -> None:
    n = make_notify({"NOTIFY_SOCKET": receiver.env_value}, monotonic_usec=lambda: 123456789)
    n.reloading()
    assert receiver.recv() == "RELOADING=1\nMONOTONIC_USEC=123456789"
    n.ready()
    assert receiver.recv() == "READY=1"


def test_real_monotonic_usec_is_close_to_clock_monotonic(
    make_notify: type[SystemdNotify], receiver: Receiver
) -> None:
    import time

    n = make_notify({"NOTIFY_SOCKET": receiver.env_value})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = dict(line.split("=", 1) for line in receiver.recv().splitlines())
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_extend_timeout(make_notify: type[SystemdNotify], receiver: Receiver) -> None:
    n = make_notify({"NOTIFY_SOCKET": receiver.env_value})
    n.extend_timeout(30)
    assert receiver.recv() == "EXTEND_TIMEOUT_USEC=30000000"


def test_watchdog_pings_at_half_the_interval_watchdog_usec_asks(
    make_notify: type[SystemdNotify], receiver: Receiver
) -> None:
    env = {
        "NOTIFY_SOCKET": receiver.env_value,
        "WATCHDOG_USEC": "2000000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    clock = FakeClock()
    pinger = WatchdogPinger(make_notify(env), clock)
    assert pinger.interval == 2.0
    assert pinger.period == 1.0

    assert pinger.due(), "the first call pings at once"
    assert pinger.maybe_ping()
    assert receiver.recv() == "WATCHDOG=1"

    # the run loop calls it every iteration: nothing more until a period has passed
    # (steps are binary fractions: the fake clock adds up exactly)
    for _ in range(7):
        clock.advance(0.125)
        assert not pinger.maybe_ping()
    assert receiver.pending() == []
    clock.advance(0.125)  # now 1.0 s after the first ping
    assert pinger.maybe_ping()
    assert receiver.recv() == "WATCHDOG=1"

    # 10 s of loop iterations every 1/16 s: one ping per second of the fake clock
    for _ in range(160):
        clock.advance(0.0625)
        pinger.maybe_ping()
    received = receiver.pending()
    assert received == ["WATCHDOG=1"] * 10
    assert pinger.pings == 12


def test_a_late_iteration_pings_at_once(
    make_notify: type[SystemdNotify], receiver: Receiver
) -> None:
    env = {"NOTIFY_SOCKET": receiver.env_value, "WATCHDOG_USEC": "30000000"}
    clock = FakeClock()
    pinger = WatchdogPinger(make_notify(env), clock)
    pinger.maybe_ping()
    clock.advance(47.0)  # the loop was slow: ping now, then 15 s from now
    assert pinger.maybe_ping()
    clock.advance(14.875)
    assert not pinger.due()
    clock.advance(0.125)
    assert pinger.due()
    assert receiver.pending() == ["WATCHDOG=1", "WATCHDOG=1"]


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("5000000", None, 5.0),
        ("5000000", "self", 5.0),
        ("5000000", "other", None),
        ("5000000", "junk", None),
        ("0", None, None),
        ("-5", None, None),
        ("", None, None),
        ("soon", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval(usec: str | None, pid: str | None, expected: float | None) -> None:
    env = {"NOTIFY_SOCKET": "/run/systemd/notify"}
    if usec is not None:
        env["WATCHDOG_USEC"] = usec
    if pid is not None:
        env["WATCHDOG_PID"] = {"self": "4242", "other": "4343"}.get(pid, pid)
    n = SystemdNotify(env, getpid=lambda: 4242)
    assert n.watchdog_interval() == expected


def test_not_under_systemd_everything_is_a_no_op() -> None:
    made: list[object] = []

    def factory(family: int, kind: int) -> socket.socket:
        made.append((family, kind))
        raise AssertionError("no socket may be made without NOTIFY_SOCKET")

    n = SystemdNotify({"WATCHDOG_USEC": "1000000"}, factory)
    assert not n.enabled
    assert not n.ready()
    assert not n.status("x")
    assert not n.stopping()
    assert not n.reloading()
    pinger = WatchdogPinger(n, FakeClock())
    assert pinger.period is None
    assert not pinger.due()
    assert not pinger.maybe_ping()
    assert made == []


def test_the_constructor_does_no_io() -> None:
    def factory(family: int, kind: int) -> socket.socket:
        raise AssertionError("the constructor must not make the socket")

    SystemdNotify({"NOTIFY_SOCKET": "/nonexistent/notify"}, factory)


def test_a_send_never_raises_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryDirectory(prefix="sdn-") as d:
        n = SystemdNotify({"NOTIFY_SOCKET": str(Path(d) / "nobody-listens")})
        with caplog.at_level(logging.DEBUG, logger="watcher.runtime.sdnotify"):
            assert not n.ready()
            assert not n.watchdog()
            assert not n.status("still here")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "nobody-listens" in warnings[0].getMessage()
    assert n.failed == 3


def test_sending_recovers_when_the_socket_comes_back(
    make_notify: type[SystemdNotify], path_receiver: Receiver
) -> None:
    class Flaky:
        """A real socket whose first send fails."""

        def __init__(self, family: int, kind: int) -> None:
            self.sock = socket.socket(family, kind)

        def settimeout(self, value: float | None, /) -> None:
            self.sock.settimeout(value)

        def sendto(self, data: bytes, address: str | bytes, /) -> int:
            if self is made[0]:
                raise ConnectionRefusedError(111, "refused")
            return self.sock.sendto(data, address)

        def close(self) -> None:
            self.sock.close()

    made: list[Flaky] = []

    def factory(family: int, kind: int) -> Flaky:
        s = Flaky(family, kind)
        made.append(s)
        return s

    n = make_notify({"NOTIFY_SOCKET": path_receiver.env_value}, factory)
    assert not n.ready()
    assert n.ready(), "a new socket is made after a failed send"
    assert path_receiver.recv() == "READY=1"
    assert len(made) == 2


def test_an_unsupported_address_is_a_no_op_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    n = SystemdNotify({"NOTIFY_SOCKET": "vsock:2:1234"})
    with caplog.at_level(logging.WARNING, logger="watcher.runtime.sdnotify"):
        assert not n.ready()
        assert not n.ready()
    assert not n.enabled
    assert len(caplog.records) == 1
    assert "vsock:2:1234" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@sd-notify/1", b"\0sd-notify/1"),
        ("@", None),
        ("relative/path", None),
        ("vsock:2:1234", None),
    ],
)
def test_socket_address(value: str, expected: str | bytes | None) -> None:
    assert socket_address(value) == expected
