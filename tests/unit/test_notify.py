"""Pages: pure rendering, and the Notifier's scheduling with fake apprise objects.

Scheduling is driven by explicit ``pump()`` calls with a fake clock and an
executor whose futures the test completes by hand; the threaded tests use
events with bounded waits, never sleeps.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.incidents import make_incident, with_line
from watcher.core.decide import Action
from watcher.core.settings import NotifySettings
from watcher.core.text import visible as plain
from watcher.responders.base import Outcome
from watcher.responders.notify.delivery import Notifier
from watcher.responders.notify.responder import NotifyResponder
from watcher.responders.notify.targets import check_targets, redact_url
from watcher.responders.notify.text import (
    MAX_LINE_CHARS,
    render_all_clear,
    render_log_loss,
    render_page,
    render_reminder,
    render_warning,
)

HOSTILE_LINE = (
    "Oct 16 17:55:01 mx postfix/smtp[4242]: 1A2B3C4D5E: "
    "to=<\"$(touch /tmp/pwned)\"`id`;'x'@lists.example.org>, relay=mx.example.org[192.0.2.7]:25, "
    "delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 ok) <b>*bold*</b> [link](http://x)"
)
INCIDENT = make_incident(
    id="20111016T085552Z-forwarding-loop",
    rule="forwarding-loop",
    description="null-sender bounces relayed to a remote host",
    count=1000,
    threshold=100,
    window_seconds=300.0,
    first_time="2011-10-16T17:52:52+09:00",
    trip_time="2011-10-16T17:55:52+09:00",
    trip_line=HOSTILE_LINE,
    top_domains=(("lists.example.org", 612), ("ml.example.net", 388)),
    host="mx1",
)
# apprise's e-mail plugin imports the deprecated imghdr module when its plugins load.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

TRIP = Action("notify", "trip", "forwarding-loop", 0, 1000, 100, 300.0)
WARN = Action("notify", "warn", "forwarding-loop", 0, 50, 50, 300.0)


# ---------------------------------------------------------------- rendering


def test_page_has_what_a_human_needs_from_a_phone() -> None:
    outcomes = [
        Outcome("stop-fetchmail", True, "stopped 1 of 1 fetchmail process(es)"),
        Outcome("freeze-postfix", False, "postconf exited 1:\nfatal: bad"),
        Outcome("hold-bounces", True, "held 612 messages"),
    ]
    title, body = render_page(INCIDENT, outcomes)
    assert (
        title == "[stormwatch] TRIPPED on mx1: forwarding-loop, 1000 in 300 s, 1 action(s) FAILED"
    )
    lines = body.splitlines()
    for expected in [
        "Kill switch TRIPPED on mx1 by rule forwarding-loop.",
        "null-sender bounces relayed to a remote host",
        "Count: 1000 in 300 s (threshold 100)",
        "First match: 2011-10-16T17:52:52+09:00 (log time)",
        "Trip line:   2011-10-16T17:55:52+09:00 (log time)",
        "Incident: 20111016T085552Z-forwarding-loop",
        "  lists.example.org: 612",
        "  ml.example.net: 388",
        "  ok     stop-fetchmail: stopped 1 of 1 fetchmail process(es)",
        "  FAILED freeze-postfix: postconf exited 1: / fatal: bad",
        "  ok     hold-bounces: held 612 messages",
        "1 of 3 action(s) FAILED: see above.",
        HOSTILE_LINE,  # verbatim: no shell, no markup
    ]:
        assert expected in lines, expected
    assert "stormwatch rearm" in lines[-1]


def test_page_when_all_went_well_or_nothing_reported() -> None:
    title, body = render_page(INCIDENT, [Outcome("hold-bounces", True, "held 3")])
    assert "FAILED" not in title
    assert "Every action succeeded." in body.splitlines()
    _, body = render_page(replace(INCIDENT, top_domains=(), host=""), [])
    assert "  (no action has reported yet)" in body.splitlines()
    assert "Top destination domains:" not in body


def test_control_and_bidi_characters_are_escaped_and_long_lines_cut() -> None:
    nasty = "a\nb\r\x1b[31m\u202egnp.exe\x00"
    assert plain(nasty) == "a\\x0ab\\x0d\\x1b[31m\\u202egnp.exe\\x00"
    title, body = render_page(replace(with_line(INCIDENT, nasty), rule="r\nx", host="h\u2028"), [])
    assert "\n" not in title
    assert "r\\x0ax" in title
    assert "a\\x0ab\\x0d\\x1b[31m\\u202egnp.exe\\x00" in body.splitlines()
    long_line = "x" * (MAX_LINE_CHARS + 10)
    _, body = render_page(replace(with_line(INCIDENT, long_line)), [])
    assert "x" * MAX_LINE_CHARS + " ... [10 more characters]" in body.splitlines()


def test_many_domains_are_summarised() -> None:
    domains = tuple((f"d{i}.example", 100 - i) for i in range(12))
    _, body = render_page(replace(INCIDENT, top_domains=domains), [])
    assert "  d7.example: 93" in body.splitlines()
    assert "  d8.example: 92" not in body.splitlines()
    assert "  (+4 more)" in body.splitlines()


def test_warning_says_nothing_was_stopped() -> None:
    title, body = render_warning(
        replace(INCIDENT, trip=replace(INCIDENT.trip, count=50), threshold=50)  # type: ignore[type-var]
    )
    assert title == "[stormwatch] warning on mx1: forwarding-loop, 50 in 300 s"
    assert "The kill switch has NOT tripped: nothing was stopped." in body
    assert "Count: 50 in 300 s (warns at 50)" in body
    assert HOSTILE_LINE in body.splitlines()
    assert "stormwatch trip" in body


@pytest.mark.parametrize(
    ("since", "text"),
    [
        (timedelta(seconds=42), "42 s"),
        (timedelta(minutes=30), "30 min"),
        (timedelta(hours=1, minutes=35), "1 h 35 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(days=3, hours=4), "3 d 4 h"),
    ],
)
def test_reminder_says_for_how_long(since: timedelta, text: str) -> None:
    title, body = render_reminder(INCIDENT, since, held_count=612)
    assert title == f"[stormwatch] still TRIPPED on mx1: forwarding-loop, for {text}"
    assert "Messages on hold: 612" in body
    assert "stormwatch rearm" in body


def test_all_clear_counts_released_and_held() -> None:
    title, body = render_all_clear(INCIDENT, released_count=600, held_count=12)
    assert title == "[stormwatch] re-armed on mx1: forwarding-loop"
    assert "Released from hold back into the queue: 600" in body
    assert "Still on hold: 12" in body
    assert "postsuper -H" in body
    _, body = render_all_clear(INCIDENT, released_count=0, held_count=0)
    assert "postsuper" not in body


def test_log_loss_says_the_watcher_is_partly_blind() -> None:
    line = "Oct 16 17:55:00 mx rsyslogd: imjournal: 1234 messages lost due to rate-limiting"
    title, body = render_log_loss(1234, line, host="mx1")
    assert title == "[stormwatch] partly blind on mx1: 1234 log line(s) lost"
    assert "partly blind" in body
    assert line in body.splitlines()
    assert render_log_loss(0, "x")[0] == "[stormwatch] partly blind: some log line(s) lost"


# ---------------------------------------------------------------- fakes


class FakePlugin:
    def __init__(self, url: str, smtp_host: str = "") -> None:
        self._url = url
        self.smtp_host = smtp_host
        self.socket_connect_timeout = 15.0
        self.socket_read_timeout = 4.0

    def url(self, privacy: bool = False) -> str:
        return self._url.replace("secret", "****") if privacy else self._url


class Behaviour:
    """What each fake target does: a list of results, one per attempt (the last repeats)."""

    def __init__(self) -> None:
        self.script: dict[str, list[bool | str]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.arrived: dict[str, threading.Event] = {}
        self.gate: dict[str, threading.Event] = {}


class FakeApprise:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.plugins: list[FakePlugin] = []

    def add(self, server: str | FakePlugin) -> bool:
        if isinstance(server, FakePlugin):
            self.plugins.append(server)
            return True
        if not server.startswith(("fake://", "mailto://")):
            return False
        host = "localhost" if server.startswith("mailto://") else ""
        self.plugins.append(FakePlugin(server, smtp_host=host))
        return True

    def __iter__(self) -> Iterator[FakePlugin]:
        return iter(self.plugins)

    def notify(self, **kwargs: Any) -> bool:
        url = self.plugins[0].url()
        b = self.behaviour
        with b.lock:
            b.calls.append((url, kwargs))
            script = b.script.get(url, [True])
            result = script.pop(0) if len(script) > 1 else script[0]
        gate = b.gate.get(url)
        if gate is not None:
            assert gate.wait(10), "test never released the slow target"
        b.arrived.setdefault(url, threading.Event()).set()
        if result == "raise":
            raise ConnectionError("boom")
        return result is True


class ManualExecutor(cf.Executor):
    """Futures stay pending until the test runs them."""

    def __init__(self) -> None:
        self.pending: list[tuple[cf.Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.set_running_or_notify_cancel()
        self.pending.append((future, lambda: fn(*args, **kwargs)))
        return future

    def run(self, url: str | None = None) -> int:
        """Run the pending sends (only those to ``url``, if given); how many ran."""
        ran = 0
        for future, call in list(self.pending):
            if url is not None and call.__closure__ is not None:
                sender = call.__closure__[0].cell_contents[0]
                if sender.plugins[0].url() != url:
                    continue
            self.pending.remove((future, call))
            future.set_result(call())
            ran += 1
        return ran


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def notifier(
    urls: list[str],
    behaviour: Behaviour,
    executor: cf.Executor | None = None,
    clock: Clock | None = None,
    **kwargs: Any,
) -> Notifier:
    def executor_factory(_workers: int) -> cf.Executor:
        return executor or ManualExecutor()

    return Notifier(
        urls,
        apprise_factory=lambda: FakeApprise(behaviour),
        executor_factory=executor_factory,
        clock=clock or Clock(),
        **kwargs,
    )


def stats(n: Notifier) -> dict[str, dict[str, object]]:
    return {
        t.url: {
            "sent": t.sent,
            "failed": t.failed,
            "retried": t.retried,
            "pending": t.pending,
            "dropped": t.dropped,
        }
        for t in n.results().targets
    }


# ---------------------------------------------------------------- scheduling


def test_send_queues_and_each_target_gets_the_message_as_plain_text() -> None:
    b = Behaviour()
    ex = ManualExecutor()
    n = notifier(["fake://a", "fake://b"], b, ex)
    n.send("title", "body", "failure")
    assert b.calls == []  # send() only queues
    n.pump()
    assert ex.run() == 2
    assert n.pump() is None  # idle
    assert b.calls == [
        (
            "fake://a",
            {"body": "body", "title": "title", "notify_type": "failure", "body_format": "text"},
        ),
        (
            "fake://b",
            {"body": "body", "title": "title", "notify_type": "failure", "body_format": "text"},
        ),
    ]
    assert stats(n)["fake://a"] == {
        "sent": 1,
        "failed": 0,
        "retried": 0,
        "pending": 0,
        "dropped": 0,
    }


def test_failures_are_retried_with_exponential_backoff_per_target() -> None:
    b = Behaviour()
    b.script["fake://flaky"] = [False, "raise", True]
    ex, clock = ManualExecutor(), Clock()
    n = notifier(["fake://flaky", "fake://good"], b, ex, clock, retries=3, backoff=1.0)
    n.send("t", "b")
    n.pump()
    ex.run()
    assert n.pump() == 1.0  # first retry after 1 s; the good target is done
    assert stats(n)["fake://good"]["sent"] == 1
    clock.now += 1.0
    n.pump()
    ex.run()
    assert n.pump() == 2.0  # then 2 s
    assert n.results().targets[0].last_error == "ConnectionError: boom"
    clock.now += 2.0
    n.pump()
    ex.run()
    assert n.pump() is None
    assert stats(n)["fake://flaky"] == {
        "sent": 1,
        "failed": 0,
        "retried": 2,
        "pending": 0,
        "dropped": 0,
    }


def drain(n: Notifier, ex: ManualExecutor, clock: Clock) -> float:
    """Pump, run the sends, and jump the clock to each wake-up until idle; the time it took."""
    start = clock.now
    for _ in range(100):
        delay = n.pump()
        if ex.run():
            continue
        if delay is None:
            return clock.now - start
        clock.now += delay
    raise AssertionError(f"the notifier never went idle: {n.results()}")


def test_a_dead_target_is_given_up_after_its_retries_and_never_holds_up_the_others() -> None:
    b = Behaviour()
    b.script["fake://dead"] = [False]
    ex, clock = ManualExecutor(), Clock()
    n = notifier(["fake://dead", "fake://good"], b, ex, clock, retries=2, backoff=0.5)
    n.send("one", "b")
    n.pump()
    ex.run()
    n.send("two", "b")
    n.pump()
    assert ex.run("fake://good") == 1  # at once, while the dead target waits to retry
    assert drain(n, ex, clock) == 0.5 + 1.0 + 0.5 + 1.0  # "one" then "two": 3 attempts each
    dead = n.results().targets[0]
    assert (dead.sent, dead.failed, dead.retried) == (0, 2, 4)
    assert dead.last_error == "apprise reported a failure"
    assert stats(n)["fake://good"]["sent"] == 2
    assert [c[1]["title"] for c in b.calls if c[0] == "fake://dead"] == ["one"] * 3 + ["two"] * 3


def test_a_slow_target_times_out_and_its_lane_waits_while_others_go_on() -> None:
    b = Behaviour()
    ex, clock = ManualExecutor(), Clock()
    n = notifier(["fake://slow", "fake://good"], b, ex, clock, timeout=5.0, retries=1, backoff=1.0)
    n.send("first", "b")
    assert n.pump() == 5.0
    assert ex.run("fake://good") == 1
    n.pump()
    n.send("second", "b")  # the good target gets it while the slow one still hangs
    n.pump()
    assert ex.run("fake://good") == 1
    n.pump()
    assert stats(n)["fake://good"]["sent"] == 2
    clock.now += 5.0
    n.pump()  # the slow send is past its timeout: a failed attempt, retry due in 1 s
    slow = n.results().targets[0]
    assert (slow.retried, slow.last_error) == (1, "no answer within 5 s")
    clock.now += 1.0
    assert n.pump() is None  # retry due, but the lane waits for the hung send to end
    assert ex.run("fake://slow") == 1  # it ends, late, and fine: that counts as sent
    n.pump()
    assert stats(n)["fake://slow"] == {
        "sent": 1,
        "failed": 0,
        "retried": 1,
        "pending": 1,
        "dropped": 0,
    }
    ex.run("fake://slow")
    n.pump()
    assert stats(n)["fake://slow"]["sent"] == 2


def test_a_full_queue_drops_the_oldest_pending_message_and_counts_it() -> None:
    b = Behaviour()
    ex = ManualExecutor()
    n = notifier(["fake://a"], b, ex, queue_size=2)
    for i in range(3):
        n.send(f"m{i}", "b")
    assert n.results().dropped == 1
    n.pump()  # m1 in flight, m2 pending
    for i in range(3, 6):
        n.send(f"m{i}", "b")
    assert n.results().dropped == 2  # m3 never left the incoming queue
    n.pump()  # the lane holds m1 (in flight) + at most 2 pending: m2 makes way for m5
    assert stats(n)["fake://a"]["dropped"] == 1
    while ex.run():
        n.pump()
    assert [c[1]["title"] for c in b.calls] == ["m1", "m4", "m5"]


def test_without_any_usable_target_messages_are_counted_undeliverable() -> None:
    b = Behaviour()
    n = notifier(["bogus://x"], b)
    n.send("t", "b")
    n.pump()
    assert n.results().undeliverable == 1
    assert n.target_count() == 0
    assert n.problems == [
        "bogus://x: not a valid apprise URL (or its notification service is unavailable)"
    ]


class SyncExecutor(ManualExecutor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.run()
        return future


def test_send_now_reports_each_target_in_order() -> None:
    b = Behaviour()
    b.script["fake://dead"] = [False]
    n = notifier(["fake://good?secret", "bogus://u", "fake://dead"], b, SyncExecutor())
    assert n.send_now("t", "b") == [
        ("fake://good?****", True, ""),
        (
            "bogus://u",
            False,
            "not a valid apprise URL (or its notification service is unavailable)",
        ),
        ("fake://dead", False, "apprise reported a failure"),
    ]


def test_send_now_logs_the_message_by_its_title(caplog: pytest.LogCaptureFixture) -> None:
    """rearm's all-clear goes through send_now: it must not be logged as a test message."""
    b = Behaviour()
    b.script["fake://dead"] = [False]
    n = notifier(["fake://good", "fake://dead"], b, SyncExecutor())
    with caplog.at_level(logging.INFO, logger="watcher.responders.notify.delivery"):
        n.send_now("re-armed: incident x", "b", "success")
    logged = [r.getMessage() for r in caplog.records]
    assert "notify: 're-armed: incident x' sent to fake://good" in logged
    assert "notify: 're-armed: incident x' to fake://dead failed: apprise reported a failure" in (
        logged
    )
    assert not any("test message" in m for m in logged)


def test_send_now_does_not_wait_past_the_timeout() -> None:
    b = Behaviour()
    n = notifier(["fake://hangs"], b, ManualExecutor(), timeout=0.01)
    assert n.send_now("t", "b") == [("fake://hangs", False, "no answer within 0.01 s")]


def test_apprise_timeouts_are_lowered_to_the_send_timeout() -> None:
    b = Behaviour()
    n = notifier(["fake://a"], b, timeout=3.0)
    n.load_targets()
    lanes = n._lanes
    assert lanes is not None
    plugin = lanes[0].sender.plugins[0]
    assert (plugin.socket_connect_timeout, plugin.socket_read_timeout) == (3.0, 3.0)


# ---------------------------------------------------------------- threads


def test_the_worker_thread_delivers_while_a_slow_target_hangs() -> None:
    b = Behaviour()
    b.gate["fake://slow"] = threading.Event()
    n = Notifier(
        ["fake://slow", "fake://good"],
        apprise_factory=lambda: FakeApprise(b),
        timeout=30.0,
    )
    n.start()
    try:
        n.send("first", "b")
        assert b.arrived.setdefault("fake://good", threading.Event()).wait(5), (
            "good target got nothing"
        )
        b.arrived["fake://good"].clear()
        n.send("second", "b")
        assert b.arrived["fake://good"].wait(5), "the second message waited for the slow target"
        assert not b.arrived.get("fake://slow", threading.Event()).is_set()
    finally:
        b.gate["fake://slow"].set()
        assert n.stop(5), n.results()
    assert stats(n) == {
        "fake://slow": {"sent": 2, "failed": 0, "retried": 0, "pending": 0, "dropped": 0},
        "fake://good": {"sent": 2, "failed": 0, "retried": 0, "pending": 0, "dropped": 0},
    }


def test_stop_delivers_what_is_pending_first() -> None:
    b = Behaviour()
    n = Notifier(["fake://a"], apprise_factory=lambda: FakeApprise(b))
    n.start()
    for i in range(5):
        n.send(f"m{i}", "b")
    assert n.stop(5)
    assert [c[1]["title"] for c in b.calls] == [f"m{i}" for i in range(5)]


# ---------------------------------------------------------------- responder


def test_responder_queues_the_page_with_the_outcomes_so_far() -> None:
    b = Behaviour()
    ex = ManualExecutor()
    n = notifier(["fake://a", "fake://b"], b, ex)
    done = [Outcome("freeze-postfix", False, "postconf: not found")]
    responder = NotifyResponder(n, outcomes=lambda: done)
    outcome = responder.respond(TRIP, INCIDENT)
    assert outcome == Outcome(
        "notify",
        True,
        "page queued for 2 target(s)",
        {"targets": 2, "severity": "trip", "title": render_page(INCIDENT, done)[0]},
    )
    n.pump()
    ex.run()
    assert b.calls[0][1]["notify_type"] == "failure"
    assert "  FAILED freeze-postfix: postconf: not found" in b.calls[0][1]["body"].splitlines()


def test_responder_sends_a_warning_for_a_warn_action() -> None:
    b = Behaviour()
    ex = ManualExecutor()
    n = notifier(["fake://a"], b, ex)
    outcome = NotifyResponder(n).respond(WARN, INCIDENT)
    assert outcome.ok
    assert outcome.summary == "warning queued for 1 target(s)"
    n.pump()
    ex.run()
    assert b.calls[0][1]["notify_type"] == "warning"
    assert b.calls[0][1]["title"].startswith("[stormwatch] warning")


def test_responder_without_targets_is_a_failed_outcome() -> None:
    outcome = NotifyResponder(notifier([], Behaviour())).respond(TRIP, INCIDENT)
    assert not outcome.ok
    assert outcome.summary == "no notification target: nobody was paged"


def test_from_settings() -> None:
    settings = NotifySettings(urls=("json://127.0.0.1:9/",), retries=5, timeout_seconds=2.5)
    n = Notifier.from_settings(settings, ["json://127.0.0.1:10/"])
    assert [t.scheme for t in n.load_targets()] == ["json", "json"]
    assert n.target_count() == 2


# ---------------------------------------------------------------- real apprise parsing (no I/O)


def test_redaction_of_real_apprise_urls() -> None:
    assert redact_url("json://user:hunter2@127.0.0.1:9/hook").startswith(
        "json://user:****@127.0.0.1:9/hook"
    )
    assert "hunter2" not in redact_url("mailtos://me:hunter2@example.com")
    telegram = redact_url("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345")
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in telegram
    unknown = redact_url("nope://user:hunter2@host/path?token=abc&x=1")
    assert unknown == "nope://user:****@host/path?token=****&x=1"


def test_targets_from_a_real_apprise_config_file(tmp_path: Path) -> None:
    config = tmp_path / "apprise.txt"
    config.write_text("json://user:hunter2@127.0.0.1:9/a\nmailto://localhost?to=root@localhost\n")
    targets = Notifier([], config_file=config).load_targets()
    assert [t.scheme for t in targets] == ["json", "mailto"]
    assert all("hunter2" not in t.url for t in targets)
    assert targets[1].smtp_host == "localhost"
    missing = Notifier([], config_file=tmp_path / "nope.txt")
    assert missing.load_targets() == ()
    assert missing.problems == [
        f"apprise config file {tmp_path / 'nope.txt'}: cannot read: No such file or directory"
    ]


def test_check_targets(tmp_path: Path) -> None:
    assert check_targets([], None) == [
        "no notification target: a trip will page nobody "
        "(set [notify] urls or config_file, or pass --notify URL)"
    ]
    only_local_mail = check_targets(
        ["mailto://localhost?to=admin@example.org"], None, hostname="mx1"
    )
    assert len(only_local_mail) == 1
    assert "through this host's Postfix (SMTP server localhost)" in only_local_mail[0]
    assert "freezes" in only_local_mail[0]
    only_mail = check_targets(["mailtos://me:pw@gmail.com"], None, hostname="mx1")
    assert len(only_mail) == 1
    assert "smtp.gmail.com" in only_mail[0]
    assert check_targets(["mailto://localhost?to=a@b.example", "json://127.0.0.1:9/"], None) == []
    config = tmp_path / "apprise.txt"
    config.write_text("mailto://mx1?to=admin@example.org&from=stormwatch@mx1.example\n")
    from_file = check_targets([], config, hostname="mx1")
    assert len(from_file) == 1
    assert "SMTP server mx1" in from_file[0]
    bad = check_targets(["bogus://x", "json://127.0.0.1:9/"], None)
    assert bad == [
        "bogus://x: not a valid apprise URL (or its notification service is unavailable)"
    ]
