"""A loopback SMTP sink: what a private Postfix relays to, i.e. what "escaped".

Runs aiosmtpd's SMTP protocol on its own event loop in a thread, listening on a
socket bound before ``start()`` returns (so the port is known and there is no race
for it). Every message is recorded with its envelope and arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session

from .procs import LOOPBACK, Started
from .requires import wait_for


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as the sink received it."""

    mail_from: str  # the envelope sender; "" for the null sender <>
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float  # time.time() when DATA completed
    received_mono: float  # time.monotonic() at the same moment
    peer: str = ""

    @property
    def null_sender(self) -> bool:
        return self.mail_from == ""

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Recorder:
    """aiosmtpd handler: accepts everything and appends it to the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # decode_data=False: content is the raw bytes as received.
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        # aiosmtpd strips the brackets of a real address but keeps "<>" for the null one.
        mail_from = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        peer = session.peer
        self._sink._record(
            ReceivedMessage(
                mail_from=mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=content,
                received_at=time.time(),
                received_mono=time.monotonic(),
                peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or ""),
            )
        )
        return "250 2.0.0 Ok: recorded by the stormwatch test sink"


class SmtpSink(Started):
    """Loopback SMTP server recording every message; a context manager.

    >>> with SmtpSink() as sink:                       # doctest: +SKIP
    ...     relayhost = f"[127.0.0.1]:{sink.port}"
    ...     sink.wait_for_count(1, timeout=10)
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        hostname: str = "sink.example.net",
    ) -> None:
        # The banner/EHLO name must differ from the Postfix instance's myhostname,
        # or Postfix's smtp client reports "mail for ... loops back to myself".
        self.host = host
        self.hostname = hostname
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sink is not started")
        return self._port

    @property
    def relayhost(self) -> str:
        """The value for Postfix's ``relayhost`` (bracketed: no MX lookup)."""
        return f"[{self.host}]:{self.port}"

    def start(self, timeout: float = 10.0) -> SmtpSink:
        if self._thread is not None:
            raise RuntimeError("the sink is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._serve, args=(loop, sock, ready), name=f"smtp-sink:{self._port}"
        )
        self._thread.daemon = True
        self._thread.start()
        wait_for(
            lambda: ready.is_set() or self._error is not None,
            timeout,
            f"the SMTP sink on {self.host}:{self._port} to start",
        )
        if self._error is not None:
            raise RuntimeError("the SMTP sink failed to start") from self._error
        return self

    def _serve(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, ready: threading.Event
    ) -> None:
        asyncio.set_event_loop(loop)
        handler = _Recorder(self)

        def protocol() -> SMTP:
            return SMTP(handler, hostname=self.hostname, ident="stormwatch-sink", loop=loop)

        try:
            server = loop.run_until_complete(loop.create_server(protocol, sock=sock))
        except BaseException as err:  # reported to start()
            self._error = err
            sock.close()
            loop.close()
            return
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise AssertionError(f"the SMTP sink thread did not stop within {timeout:g}s")
        self._thread = None
        self._loop = None

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of everything received so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> list[ReceivedMessage]:
        """Forget (and return) what was received so far."""
        with self._lock:
            taken, self._messages = self._messages, []
        return taken

    def bounces(self) -> list[ReceivedMessage]:
        """The null-sender messages received: backscatter."""
        return [m for m in self.messages if m.null_sender]

    def wait_for_count(
        self,
        count: int,
        timeout: float,
        *,
        where: Callable[[ReceivedMessage], bool] | None = None,
        what: str = "messages",
    ) -> list[ReceivedMessage]:
        """Wait until at least ``count`` received messages satisfy ``where``; return them."""

        def matching() -> list[ReceivedMessage]:
            return [m for m in self.messages if where is None or where(m)]

        return wait_for(
            lambda: found if len(found := matching()) >= count else [],
            timeout,
            f"{count} {what} at the SMTP sink on port {self.port}",
            seen=lambda: [(m.mail_from, m.rcpt_tos) for m in self.messages],
        )
