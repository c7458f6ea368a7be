"""Property tests: no input makes the parser or the pipeline raise; a quoted local part
is read whole, by the parser and the block scanner alike."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import logshapes as L
from watcher.core.events import Delivery, QueueSender
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.scanner import SENDER, scan_block
from watcher.runtime.rulefiles import load_rules

RULES = [r.rule for r in load_rules()]

# Pieces real lines are made of, so random lines reach deep into the parser.
FRAGMENTS = st.sampled_from(
    [
        "Oct 16 17:52:52 ", "Oct  6 17:52:52 ", "Feb 30 25:61:61 ", "2026-11-28T02:50:43.123456+00:00 ",
        "2026-13-40T99:99:99 ", "mx ", "postfix/smtp[1]: ", "postfix/qmgr[2]: ", "postfix/bounce[3]: ",
        "postfix/local[4]: ", "postfix-out/relay/smtp[5]: ", "rsyslogd: ", "1A2B3C4D5E: ",
        "3Pt2mN2VXxznjll: ", "to=<", "from=<", ">, ", "relay=", "x[192.0.2.1]:25, ", "dsn=2.0.0, ",
        "status=sent ", "status=bounced ", "(mail forwarding loop for a@b)", "removed",
        "sender non-delivery notification: ", "size=1, nrcpt=1 (queue active)", "]: ", ": ",
        "lost 5 messages from pid 1 due to rate-limiting", "Suppressed 9 messages from x",
        "\x00", "\ufffd", "<>", "@", " ", "[", "]",
    ]
)  # fmt: skip
LINES = st.lists(FRAGMENTS, max_size=14).map("".join) | st.text(max_size=200)


@given(st.lists(LINES, max_size=30))
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_parser_and_pipeline_never_raise_on_text(lines: list[str]) -> None:
    lines = [ln.replace("\n", " ").replace("\r", " ") for ln in lines]
    parser = Parser(reference=L.REFERENCE)
    for ln in lines:
        parser.parse(ln)
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    assert p.run(lines, "x") == len(lines)
    assert p.parser.stats.lines == len(lines)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_bytes_decoded_with_replacement_never_raise(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    p.run_text(text, "x")


@given(st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_shuffled_log_never_raises_in_correlate(rnd: random.Random) -> None:
    lines: list[str] = []
    for i in range(15):
        lines += L.storm_message(i / 5, i % 4, f"l{i}@example.org")  # reused queue IDs too
        lines += L.ordinary_message(i, i % 3)
    rnd.shuffle(lines)
    p = Pipeline.build(RULES, Parser(reference=L.REFERENCE))
    p.run(lines, "x")
    assert p.parser.stats.unparsed == 0


def quote_822_local(local: str) -> str:
    """As Postfix logs a local part that is not a dot-string (global/quote_822_local.c)."""
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


# the pieces of fake fields a sender can put in a quoted local part, and some text
PIECES = [
    ">, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (",
    ">, size=1, nrcpt=9 (", ">, ", "relay=", '"', "\\", "a", "@", "(", ")",
]  # fmt: skip
LOCAL_PARTS = st.lists(
    st.sampled_from(PIECES)
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
    max_size=12,
).map("".join)


@given(LOCAL_PARTS, st.sampled_from(["@lists.example.org", ""]))
@settings(max_examples=300, deadline=None)
def test_a_quoted_local_part_is_read_whole(local: str, domain: str) -> None:
    address = quote_822_local(local) + domain
    sender_line = L.qmgr_from(0, "7A8B9C0D1E", address)
    lines = [sender_line, L.delivery(0, "7A8B9C0D1E", address)]
    parser = Parser(reference=L.REFERENCE)
    sender, delivery = (parser.parse(x) for x in lines)
    assert isinstance(sender, QueueSender)
    assert sender.sender == address
    assert (sender.size, sender.nrcpt) == (5000, 1)
    assert isinstance(delivery, Delivery)
    assert delivery.recipient == address
    assert (delivery.relay_ip, delivery.status, delivery.detail) == ("192.0.2.25", "sent", "250 ok")
    _, events, _, _, _ = scan_block(sender_line + "\n", False)
    assert [(e[0], e[2]) for e in events] == [(SENDER, address)]
