"""The systemd notify protocol (``sd_notify(3)``) in a few lines, no compiled dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: a datagram socket to send
``KEY=VALUE`` lines to. It is a file system path (``/run/systemd/notify``) or, when
it starts with ``@``, a Linux abstract socket name. Not under systemd (no
``$NOTIFY_SOCKET``) every method is a no-op, so the same code runs in a terminal.

* ``ready()`` once the sources are open and the state is loaded (``READY=1``);
  again after a reload.
* ``status(text)``: the one-line summary ``systemctl status`` shows (``STATUS=``).
* ``watchdog()``: ``WATCHDOG=1``; with ``WatchdogSec=`` systemd kills and restarts
  the service when these stop coming. Send it from the pipeline's own loop
  (:class:`WatchdogPinger`), so that a wedged loop is caught, not only a dead
  process.
* ``reloading()`` when a SIGHUP reload starts (``RELOADING=1`` with
  ``MONOTONIC_USEC=``, which systemd 253+ wants), then ``ready()`` when it is done.
* ``stopping()`` when the stop begins (``STOPPING=1``).

A send never raises: a notification that cannot be delivered must not take the
watcher down. The first failure is logged as a warning, later ones at debug level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 2.0


class DatagramSocket(Protocol):
    """What this module uses of :class:`socket.socket`."""

    def settimeout(self, value: float | None, /) -> None: ...

    def sendto(self, data: bytes, address: str | bytes, /) -> int: ...

    def close(self) -> None: ...


SocketFactory = Callable[[int, int], DatagramSocket]


def _monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(value: str) -> str | bytes | None:
    """The address to send to for a ``$NOTIFY_SOCKET`` value; None if unusable.

    ``/path`` is a path socket; ``@name`` an abstract socket (a leading NUL byte
    instead of the ``@``). Anything else (``vsock:`` of newer systemd, garbage) is
    not supported here.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


class SystemdNotify:
    """Sends notifications to the service manager; a no-op when not under systemd.

    The constructor only reads ``environ``; the socket is made at the first send
    and kept for the next ones. Safe to call from several threads.
    """

    def __init__(
        self,
        environ: Mapping[str, str] = os.environ,
        socket_factory: SocketFactory = socket.socket,
        *,
        getpid: Callable[[], int] = os.getpid,
        monotonic_usec: Callable[[], int] = _monotonic_usec,
    ) -> None:
        self._raw_address = environ.get("NOTIFY_SOCKET", "")
        self._address = socket_address(self._raw_address) if self._raw_address else None
        self._watchdog_usec = environ.get("WATCHDOG_USEC", "")
        self._watchdog_pid = environ.get("WATCHDOG_PID", "")
        self._socket_factory = socket_factory
        self._getpid = getpid
        self._monotonic_usec = monotonic_usec
        self._sock: DatagramSocket | None = None
        self._lock = threading.Lock()
        self._warned = False
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        """True when there is a notify socket to send to (we run under systemd)."""
        return self._address is not None

    # -- the messages -------------------------------------------------------------

    def ready(self) -> bool:
        return self.send("READY=1")

    def status(self, text: str) -> bool:
        """``STATUS=``: one line (newlines would end the field early: folded to spaces)."""
        return self.send("STATUS=" + " ".join(text.split()))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={self._monotonic_usec()}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC=``: ask for more time for the start or stop under way."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def watchdog_interval(self) -> float | None:
        """Seconds systemd waits for a ``WATCHDOG=1`` before it acts; None if not asked.

        From ``$WATCHDOG_USEC``; when ``$WATCHDOG_PID`` is set it must be our PID (else
        the variables were meant for another process, e.g. a parent). Ping at half
        this interval.
        """
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        if self._watchdog_pid:
            try:
                pid = int(self._watchdog_pid)
            except ValueError:
                return None
            if pid != self._getpid():
                return None
        return usec / 1_000_000

    # -- sending ------------------------------------------------------------------

    def send(self, message: str) -> bool:
        """Send ``message`` (``KEY=VALUE`` lines); True if it went out. Never raises."""
        address = self._address
        if address is None:
            if self._raw_address and not self._warned:
                self._warned = True
                log.warning(
                    "NOTIFY_SOCKET=%r: unsupported address; not notifying systemd",
                    self._raw_address,
                )
            return False
        try:
            with self._lock:
                if self._sock is None:
                    sock = self._socket_factory(socket.AF_UNIX, socket.SOCK_DGRAM)
                    sock.settimeout(SEND_TIMEOUT_SECONDS)
                    self._sock = sock
                self._sock.sendto(message.encode("utf-8", "replace"), address)
        except Exception as exc:  # a notification must never take the watcher down
            self.failed += 1
            first = not self._warned
            self._warned = True
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "cannot notify systemd via %s (%s): %s%s",
                self._raw_address,
                message.split("=", 1)[0],
                exc,
                "; further failures are logged at debug level" if first else "",
            )
            self._close_socket()
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        with self._lock:
            self._close_socket()

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class WatchdogPinger:
    """``WATCHDOG=1`` at half the interval systemd asks for; cheap to call every loop.

    ``due()`` is a clock read and a comparison; ``maybe_ping()`` sends only when due.
    Without a watchdog (``WATCHDOG_USEC`` unset) both are always False.
    """

    def __init__(self, notify: SystemdNotify, clock: Callable[[], float] = time.monotonic) -> None:
        self.notify = notify
        self._clock = clock
        interval = notify.watchdog_interval() if notify.enabled else None
        self.interval = interval
        self.period = interval / 2 if interval is not None else None
        self._last: float | None = None
        self.pings = 0

    def due(self) -> bool:
        if self.period is None:
            return False
        return self._last is None or self._clock() - self._last >= self.period

    def maybe_ping(self) -> bool:
        """Ping if due; True if a ping was sent (or tried: a failed send is not retried
        before the next period)."""
        if not self.due():
            return False
        self._last = self._clock()
        self.notify.watchdog()
        self.pings += 1
        return True
