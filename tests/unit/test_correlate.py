from __future__ import annotations

from watcher.core.correlate import Correlator
from watcher.core.events import BounceNotice, Delivery, QueueSender, Removed

T = 1_000_000_000_000


def _delivery(qid: str, t: int = T) -> Delivery:
    return Delivery(
        t, "mx", "postfix/smtp", 1, qid, "smtp", "smtp", "a@example.org", "",
        "mx.example.org[192.0.2.1]:25", "mx.example.org", "192.0.2.1", 25, "2.0.0", "sent", "",
    )  # fmt: skip


def test_delivery_learns_its_sender() -> None:
    c = Correlator()
    c.feed(QueueSender(T, "mx", "postfix/qmgr", 1, "ABCDEF1234", "", 100, 1))
    fact = c.feed(_delivery("ABCDEF1234"))
    assert fact is not None
    assert fact.sender == ""


def test_unknown_queue_id_gives_unknown_sender_and_is_counted() -> None:
    c = Correlator()
    fact = c.feed(_delivery("ABCDEF1234"))
    assert fact is not None
    assert fact.sender is None
    assert c.stats.unknown_sender == 1


def test_removed_forgets_so_a_reused_short_id_starts_clean() -> None:
    c = Correlator()
    c.feed(QueueSender(T, "mx", "postfix/qmgr", 1, "ABCDEF1234", "", 100, 1))
    c.feed(Removed(T, "mx", "postfix/qmgr", 1, "ABCDEF1234"))
    c.feed(QueueSender(T + 1, "mx", "postfix/qmgr", 1, "ABCDEF1234", "bob@example.com", 100, 1))
    fact = c.feed(_delivery("ABCDEF1234", T + 1))
    assert fact is not None
    assert fact.sender == "bob@example.com"
    assert fact.parent == ""


def test_bounce_notice_links_child_to_parent_even_without_the_childs_qmgr_line() -> None:
    c = Correlator()
    c.feed(QueueSender(T, "mx", "postfix/qmgr", 1, "1111111111", "list@example.org", 100, 1))
    notice = c.feed(
        BounceNotice(
            T, "mx", "postfix/bounce", 1, "1111111111", "sender non-delivery", "2222222222"
        )
    )
    assert notice is not None
    assert notice.sender == "list@example.org"  # where the bounce is going
    fact = c.feed(_delivery("2222222222"))
    assert fact is not None
    assert (fact.sender, fact.parent) == ("", "1111111111")


def test_cap_evicts_oldest_first_and_counts() -> None:
    c = Correlator(max_open=2)
    for i, qid in enumerate(("AAAAAA0001", "AAAAAA0002", "AAAAAA0003")):
        c.feed(QueueSender(T + i, "mx", "postfix/qmgr", 1, qid, "", 1, 1))
    assert len(c) == 2
    assert c.stats.evicted == 1
    assert c.sender_of("AAAAAA0001") is None
    assert c.sender_of("AAAAAA0003") == ""


def test_ttl_expires_by_event_time() -> None:
    c = Correlator(ttl_seconds=60)
    c.feed(QueueSender(T, "mx", "postfix/qmgr", 1, "AAAAAA0001", "", 1, 1))
    c.feed(QueueSender(T + 61_000_000 * 2, "mx", "postfix/qmgr", 1, "AAAAAA0002", "", 1, 1))
    c.feed(_delivery("AAAAAA0002", T + 61_000_000 * 2))
    assert c.sender_of("AAAAAA0001") is None
    assert c.stats.expired == 1


def test_one_line_dated_weeks_ahead_expires_nothing() -> None:
    c = Correlator(ttl_seconds=86_400)
    c.feed(QueueSender(T, "mx", "postfix/qmgr", 1, "AAAAAA0001", "", 1, 1))
    c.feed(_delivery("BBBBBB0001", T + 42 * 86_400_000_000))  # one outlier line
    fact = c.feed(_delivery("AAAAAA0001", T + 1_000_000))
    assert fact is not None
    assert fact.sender == ""
    assert c.stats.expired == 0
