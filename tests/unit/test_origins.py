"""The origin of every message (smtpd's client and SASL user, pickup's uid), carried by
queue ID to its deliveries, counted per origin, the same on the fast path as per line."""

from __future__ import annotations

from collections import Counter

import pytest

from tests import logshapes as L
from watcher.core.correlate import Correlator
from watcher.core.detect import Detector
from watcher.core.events import Delivery, Origin
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.rules import Rule
from watcher.core.scanner import DELIVERY, ORIGIN, scan_block


def _rule(origin: str, group_by: str, trip_at: int = 1000) -> Rule:
    return Rule.model_validate(
        {
            "name": f"{origin}-flood",
            "trip_at": trip_at,
            "match": {"origin": origin, "agents": ["smtp"], "remote": True},
            "window": {"seconds": 3600, "group_by": group_by},
        }
    )


RULES = [_rule("sasl", "sasl-user"), _rule("pickup", "uid"), _rule("client", "client")]


def sasl_message(t: float, n: int, user: str, *, agent: str = "smtp", rcpts: int = 1) -> list[str]:
    qid = f"6{n:09X}"
    relay = (
        "mx.example.net[203.0.113.5]:25" if agent == "smtp" else "mail.example.com[private/lmtp]"
    )
    out = [
        L.line(
            t,
            "postfix/submission/smtpd",
            f"{qid}: client=pc{n}.isp.example[192.0.2.{n % 250}], sasl_method=PLAIN, "
            f"sasl_username={user}",
            3100,
        ),
        L.line(t, "postfix/cleanup", f"{qid}: message-id=<{n}@example.com>", 3001),
        L.qmgr_from(t, qid, f"{user}@example.com"),
    ]
    for r in range(rcpts):
        out.append(
            L.delivery(t + 0.3, qid, f"r{n}.{r}@example.net", program=f"postfix/{agent}",
                       relay=relay, status="deferred" if r % 2 else "sent")
        )  # fmt: skip
    return [*out, L.removed(t + 0.4, qid)]


def pickup_message(t: float, n: int, uid: int) -> list[str]:
    qid = f"7{n:09X}"
    return [
        L.line(t, "postfix/pickup", f"{qid}: uid={uid} from=<u{uid}>", 3200),
        L.qmgr_from(t, qid, f"u{uid}@example.com"),
        L.delivery(t + 0.2, qid, f"p{n}@example.org", relay="mx.example.org[198.51.100.2]:25"),
        L.removed(t + 0.3, qid),
    ]


def loopback_message(t: float, n: int) -> list[str]:
    qid = f"8{n:09X}"
    return [
        L.line(t, "postfix/smtpd", f"{qid}: client=localhost[127.0.0.1]", 3300),
        L.qmgr_from(t, qid, "app@example.com"),
        L.delivery(t + 0.2, qid, f"l{n}@example.org", relay="mx.example.org[198.51.100.2]:25"),
        L.removed(t + 0.3, qid),
    ]


def relay_client_message(t: float, n: int) -> list[str]:
    qid = f"9{n:09X}"
    return [
        L.line(t, "postfix/smtpd", f"{qid}: client=app.lan[10.0.0.5]", 3400),
        L.qmgr_from(t, qid, "newsletter@example.com"),
        L.delivery(t + 0.2, qid, f"c{n}@example.org", relay="mx.example.org[198.51.100.2]:25"),
        L.removed(t + 0.3, qid),
    ]


def _traffic() -> list[str]:
    lines: list[str] = []
    for i in range(40):
        t = i * 2.0
        lines += sasl_message(t, i, "bob" if i % 4 else "alice", rcpts=1 + i % 3)
        lines += sasl_message(t + 0.5, 100 + i, "carol", agent="lmtp")  # local: not counted
        lines += pickup_message(t + 0.7, i, 33 if i % 2 else 1000)
        lines += L.ordinary_message(t + 1.0, i)  # client unknown[198.51.100.7]
        lines += loopback_message(t + 1.5, i)
        lines += relay_client_message(t + 1.7, i)
    return lines


def _per_line(lines: list[str]) -> Pipeline:
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    for n, text in enumerate(lines, 1):
        ev = p.parser.parse(text)
        if ev is not None:
            p.feed_event(ev, "mail.log", n, text)
    return p


def test_the_join_carries_the_origin_to_every_delivery() -> None:
    parser = Parser(reference=L.REFERENCE)
    corr = Correlator()
    facts = []
    for text in sasl_message(1.0, 1, "bob", rcpts=2):
        ev = parser.parse(text)
        assert ev is not None or "cleanup" in text
        if ev is not None and (fact := corr.feed(ev)) is not None:
            facts.append(fact)
    assert len(facts) == 2
    for fact in facts:
        assert isinstance(fact.event, Delivery)
        assert fact.origin == Origin("sasl", "pc1.isp.example", "192.0.2.1", "PLAIN", "bob")
        assert fact.sender == "bob@example.com"


def test_a_reused_queue_id_does_not_inherit_the_old_origin() -> None:
    corr = Correlator()
    corr.note_origin("ABCDEF1234", Origin("sasl", "h", "192.0.2.1", "PLAIN", "bob"), 1)
    corr.note_sender("ABCDEF1234", "bob@example.com", 2)
    corr.forget("ABCDEF1234")
    corr.note_sender("ABCDEF1234", "other@example.com", 3)  # its client= line was lost
    assert corr.origin_of("ABCDEF1234") is None
    corr.note_origin("ABCDEF1234", Origin("pickup", uid=33, sender="x"), 4)
    assert corr.origin_of("ABCDEF1234") == Origin("pickup", uid=33, sender="x")
    assert corr.sender_of("ABCDEF1234") is None  # a new message: its sender is not known yet


def test_a_sasl_rule_counts_remote_recipients_per_user_whatever_their_status() -> None:
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    p.run(_traffic(), "mail.log")
    sasl = p.summaries["sasl-flood"]
    users = Counter(k.split()[1] for k in sasl.by_origin.elements())
    # bob: 30 messages with 1-3 recipients (all counted, sent or deferred); carol's are lmtp
    assert users == {
        "bob": sum(1 + i % 3 for i in range(40) if i % 4),
        "alice": sum(1 + i % 3 for i in range(40) if not i % 4),
    }
    assert p.parser.stats.unparsed == 0


def test_pickup_and_client_rules() -> None:
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    p.run(_traffic(), "mail.log")
    assert Counter(p.summaries["pickup-flood"].by_origin) == {
        "uid 33 <u33>": 20,
        "uid 1000 <u1000>": 20,
    }
    # the network client only: loopback (content filters, local apps) is not "client"
    by_client = p.summaries["client-flood"].by_origin
    assert by_client.most_common(1) == [("client app.lan[10.0.0.5]", 40)]
    assert sum(by_client.values()) == 80  # and ordinary mail: 40 clients, once each
    counts = p.detector.window_counts(L.micros(100))
    assert counts["client-flood"] == 40
    assert counts["sasl-flood"] == sum(1 + i % 3 for i in range(40) if i % 4)  # bob's


@pytest.mark.parametrize("block", [1, 3, 17, 100_000])
def test_the_fast_path_counts_what_the_per_line_path_counts(block: int) -> None:
    lines = _traffic()
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    n = 1
    for i in range(0, len(lines), block):
        n += p.run_text("\n".join(lines[i : i + block]) + "\n", "mail.log", n)
    slow = _per_line(lines)
    for name in ("sasl-flood", "pickup-flood", "client-flood"):
        assert p.summaries[name].by_origin == slow.summaries[name].by_origin, name
        assert [e.where.lineno for e in p.summaries[name].evidence] == [
            e.where.lineno for e in slow.summaries[name].evidence
        ]
    assert p.events == slow.events


def test_origin_rules_keep_ordinary_mail_on_the_fast_path() -> None:
    """Rules by origin do not need every delivery: the scanner still collapses messages
    of origins no rule counts, and keeps only the origins asked for."""
    d = Detector([_rule("sasl", "sasl-user")])
    assert d.collapsible
    assert d.origin_wants.kinds == frozenset({"sasl"})
    assert d.origin_wants.agents == frozenset({"smtp"})
    lines = _traffic()
    _, events, collapsed, _, _ = scan_block("\n".join(lines) + "\n", True, d.origin_wants)
    origins = [e for e in events if e[0] == ORIGIN]
    assert len(origins) == 80  # every SASL message: none of the others
    sasl_lmtp = {f"6{100 + i:09X}" for i in range(40)}  # carol's: delivered by lmtp only
    deliveries = {e[1] for e in events if e[0] == DELIVERY}
    assert not deliveries & sasl_lmtp  # a program no origin rule counts: left out
    # the pickup, client (2 kinds) and loopback messages collapse to their "removed" (their from=
    # and delivery lines left out), and carol's 40 lmtp deliveries are left out
    assert collapsed == 4 * 40 * 2 + 40


def test_deliveries_an_origin_rule_may_count_come_with_their_line() -> None:
    """No delivery is fetched again by offset for the origin rules (a fetch re-reads and
    counts the block): a message whose origin line is in an earlier block gets its line
    too, and a kept message's hand-off to a content filter is left out at once."""
    d = Detector(RULES)
    sasl = sasl_message(1.0, 1, "bob")
    to_filter = L.delivery(1.2, "6000000001", "x@example.net", relay="127.0.0.1[127.0.0.1]:10024")
    first, second = "\n".join(sasl[:3]) + "\n", "\n".join([to_filter, *sasl[3:]]) + "\n"
    _, events, _, _, _ = scan_block(second, True, d.origin_wants)
    deliveries = [e for e in events if e[0] == DELIVERY]
    assert [e[3] for e in deliveries] == [None, sasl[3]]  # the filter's hand-off: no line
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    fetched: list[int] = []

    def fetch(pos: int, text: str = "") -> tuple[str, int]:
        fetched.append(pos)
        raise AssertionError("fetched")

    n = 1
    for text in (first, second):
        scanned = scan_block(text, True, p.detector.origin_wants)
        p.apply(scanned, "mail.log", n, fetch)
        n += scanned[0]
    assert p.summaries["sasl-flood"].matches == 1
    lines = _traffic()
    for block in (3, 17):
        p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
        for i in range(0, len(lines), block):
            scanned = scan_block(
                "\n".join(lines[i : i + block]) + "\n", True, p.detector.origin_wants
            )
            p.apply(scanned, "mail.log", i + 1, fetch)
    assert fetched == []


def through_amavis(
    t: float, n: int, user: str, *, to: str = "", status: str = "sent", via: str = "smtp"
) -> list[str]:
    """A SASL user's message, scanned by amavisd and re-injected from localhost (as genlog's
    and fonylew's logs show it): the final delivery belongs to the re-injected copy."""
    qid, copy = f"A{n:09X}", f"B{n:09X}"
    to = to or f"r{n}@example.net"
    return [
        L.line(t, "postfix/submission/smtpd",
               f"{qid}: client=pc[192.0.2.9], sasl_method=PLAIN, sasl_username={user}", 3100),
        L.qmgr_from(t, qid, f"{user}@example.com"),
        L.line(t + 1, "postfix/smtpd", f"{copy}: client=localhost[127.0.0.1]", 3500),
        L.qmgr_from(t + 1, copy, f"{user}@example.com"),
        L.delivery(t + 1, qid, to, relay="127.0.0.1[127.0.0.1]:10024", status=status,
                   program=f"postfix/{via}",
                   detail=f"250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as {copy}"),
        L.removed(t + 1, qid),
        L.delivery(t + 2, copy, to, relay="mx.example.net[203.0.113.5]:25"),
        L.removed(t + 2, copy),
    ]  # fmt: skip


def _amavis_traffic() -> list[str]:
    lines: list[str] = []
    for i in range(30):
        lines += through_amavis(i * 3.0, i, "bob")
    lines += through_amavis(100, 90, "bob", to='"odd, status=sent ("@example.net')
    lines += through_amavis(103, 91, "bob", status="deferred")  # not re-injected: no hop
    # a filter spoken to by lmtp (a program no flood rule counts), a quoted address
    lines += through_amavis(106, 92, "bob", to='"x, y"@example.net', via="lmtp")
    return lines


@pytest.mark.parametrize("block", [1, 5, 100_000])
def test_the_origin_hops_across_a_content_filter(block: int) -> None:
    lines = _amavis_traffic()
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    n = 1
    for i in range(0, len(lines), block):
        n += p.run_text("\n".join(lines[i : i + block]) + "\n", "mail.log", n)
    slow = _per_line(lines)
    for pipeline in (p, slow):
        s = pipeline.summaries["sasl-flood"]
        assert s.by_origin == {"sasl bob from pc[192.0.2.9]": 32}  # the deferred one: no copy
        assert pipeline.summaries["client-flood"].matches == 0
    assert [e.where.lineno for e in p.summaries["sasl-flood"].evidence] == [
        e.where.lineno for e in slow.summaries["sasl-flood"].evidence
    ]
