"""Fixtures for tests with real programs: a private root, an SMTP sink, private Postfixes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness.messages import DEFAULT_LIST
from tests.integration.harness.pop3 import DovecotPop3
from tests.integration.harness.postfix import PostfixInstance, private_root, require_postfix
from tests.integration.harness.redis import RedisServer
from tests.integration.harness.requires import require_programs, require_root
from tests.integration.harness.sink import SmtpSink
from tests.integration.harness.stormwatch import Watchers
from tests.integration.harness.webhook import Webhook

LIST = DEFAULT_LIST


@pytest.fixture
def root() -> Iterator[Path]:
    with private_root() as path:
        yield path


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A loopback HTTP endpoint that records the pages apprise posts to it."""
    with Webhook() as hook:
        yield hook


@pytest.fixture
def watchers(tmp_path: Path) -> Iterator[Watchers]:
    """Start ``stormwatch run`` processes; those left running are killed at the end."""
    running = Watchers(tmp_path)
    try:
        yield running
    finally:
        running.kill_all()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def make_postfix(root: Path, sink: SmtpSink) -> Iterator[Callable[..., PostfixInstance]]:
    """Start private Postfix instances relaying to ``sink``; all are stopped at the end."""
    require_postfix()
    started: list[PostfixInstance] = []

    def make(name: str = "postfix", **kwargs: Any) -> PostfixInstance:
        kwargs.setdefault("relayhost", sink.relayhost)
        instance = PostfixInstance(root / name, **kwargs)
        started.append(instance)
        return instance.start()

    try:
        yield make
    finally:
        for instance in reversed(started):
            instance.stop()
    for instance in started:
        assert instance.processes() == [], f"{instance.config_dir}: processes left behind"


@pytest.fixture
def postfix(make_postfix: Callable[..., PostfixInstance]) -> PostfixInstance:
    return make_postfix()


@pytest.fixture
def pop3(root: Path) -> Iterator[DovecotPop3]:
    require_root()
    require_programs("dovecot")
    with DovecotPop3(root / "pop3") as server:
        yield server


def loop_post(postfix: PostfixInstance, index: int) -> str:
    """Inject one list post to the looping alias, as the list's bounce address sends it."""
    return postfix.inject(
        LIST.bounce_address, postfix.loop_address, LIST.message(index, to=postfix.loop_address)
    )


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port (killed and restarted by tests)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server
