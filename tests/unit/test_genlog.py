"""Tests for the deterministic log generator ``benchmarks/genlog.py``.

``benchmarks/`` is a plain directory with an ``__init__.py`` (not an installed
package), so the repository root is put on ``sys.path`` before importing it.
"""

from __future__ import annotations

import io
import re
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import genlog  # noqa: E402

DEMO = ROOT / "watcher" / "data" / "demo-incident.log"

LINE = re.compile(
    r"^(?P<ts>.+?) (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$"
)
CLASSIC_TS = re.compile(
    r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d\d:\d\d:\d\d$"
)
MAILLOG_TS = re.compile(
    r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-3]\d \d\d:\d\d:\d\d$"
)
RFC3339_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$")
SAFE = "0-9BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"  # Postfix's long queue ID alphabet
QID = re.compile(rf"^([0-9A-F]{{6,11}}|[{SAFE}]{{12,}}): ")
LONG_QID = re.compile(rf"^[{SAFE}]{{10,}}z[{SAFE.removesuffix('z')}]+$")  # inode part: no z
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")
DOC_IPV4 = ("192.0.2.", "198.51.100.", "203.0.113.", "127.0.0.1")
DOMAIN = re.compile(r"[A-Za-z0-9.-]+\.(?:com|net|org|jp)\b|@[A-Za-z0-9.-]+")
EXAMPLE = re.compile(r"(?:^|\.)example\.(?:com|net|org|jp)$")


def mixed(
    lines: int,
    *,
    seed: int = 1,
    fmt: str = "classic",
    storm: bool = False,
    start: str | None = None,
) -> str:
    out = io.StringIO()
    begin = datetime.fromisoformat(start) if start else None
    n = genlog.generate_mixed(out, lines=lines, seed=seed, fmt=fmt, start=begin, storm=storm)
    assert n == lines
    return out.getvalue()


def incident() -> str:
    out = io.StringIO()
    genlog.generate_incident(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def incident_text() -> str:
    return incident()


@pytest.fixture(scope="module")
def rfc_lines() -> list[str]:
    return mixed(30_000, fmt="rfc3339", storm=True, start="2026-10-05T23:50:00+00:00").splitlines()


@pytest.fixture(scope="module")
def classic_lines() -> list[tuple[str, str, str]]:
    """Several hours of storm-free traffic as (timestamp, program, message)."""
    out: list[tuple[str, str, str]] = []
    for line in mixed(50_000).splitlines():
        m = parse(line)
        out.append((m["ts"], m["prog"], m["msg"]))
    return out


def parse(line: str) -> re.Match[str]:
    m = LINE.match(line)
    assert m is not None, line
    return m


def rfc_us(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp()) * 1_000_000 + int(ts[20:26])


def classic_s(ts: str) -> int:
    """Seconds within the month (enough to compare times of one log)."""
    day, hms = int(ts[4:6]), ts[7:15]
    h, m, s = (int(x) for x in hms.split(":"))
    return ((day * 24 + h) * 60 + m) * 60 + s


# ----------------------------------------------------------------------------- building blocks
@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "0"),
        (4_000, "0"),
        (6_000, "0.01"),
        (30_000, "0.03"),
        (300_000, "0.3"),
        (730_000, "0.73"),
        (999_000, "1"),
        (1_234_567, "1.2"),
        (3_000_000, "3"),
        (9_990_000, "10"),
        (549_900_000, "549"),
        (550_260_000, "550"),
    ],
)
def test_delay_format_is_postfix_format_tv(us: int, text: str) -> None:
    assert genlog.fd(us) == text


def test_long_queue_id_encodes_time_and_inode() -> None:
    t = 1_318_755_172 * 1_000_000 + 123_456
    qid = genlog.long_qid(t, 0x2F1D3)
    assert LONG_QID.match(qid)
    secs, rest = qid[:6], qid[6:]
    alphabet = genlog.SAFE_CHARS

    def decode(s: str, base: int) -> int:
        v = 0
        for ch in s:
            v = v * base + alphabet.index(ch)
        return v

    assert decode(secs, 52) == 1_318_755_172
    assert decode(rest[:4], 52) == 123_456
    assert rest[4] == "z"
    assert decode(rest[5:], 51) == 0x2F1D3
    assert genlog.short_qid(t, 0x2F1D3) == "1E2402F1D3"


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes() -> None:
    assert mixed(8_000, seed=3, storm=True) == mixed(8_000, seed=3, storm=True)


def test_other_seed_other_bytes() -> None:
    assert mixed(2_000, seed=3) != mixed(2_000, seed=4)


def test_cli_writes_exact_line_count(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    for path in (a, b):
        argv = ["--scenario", "mixed", "--lines", "3000", "--seed", "9", "--format", "maillog"]
        assert genlog.main([*argv, "-o", str(path)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_text(encoding="utf-8").splitlines()) == 3000


def test_cli_refuses_to_reshape_the_incident(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        genlog.main(["--scenario", "incident", "--format", "rfc3339", "-o", str(tmp_path / "x")])


def test_line_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lines"):
        genlog.generate_mixed(io.StringIO(), lines=0)


# ----------------------------------------------------------------------------- formats
def test_classic_day_is_space_padded() -> None:
    lines = mixed(3_000, start="2026-10-05T23:55:00+00:00").splitlines()
    stamps = [line[:15] for line in lines]
    assert all(CLASSIC_TS.match(s) for s in stamps)
    assert stamps[0].startswith("Oct  5 23:5")
    assert any(s.startswith("Oct  6 00:") for s in stamps)


def test_maillog_day_is_zero_padded_and_postfix_only() -> None:
    lines = mixed(3_000, fmt="maillog", start="2026-10-05T23:55:00+00:00").splitlines()
    assert all(MAILLOG_TS.match(line[:15]) for line in lines)
    assert lines[0].startswith("Oct 05 23:5")
    assert any(line.startswith("Oct 06 00:") for line in lines)
    assert {parse(line)["prog"].split("/")[0] for line in lines} == {"postfix"}


def test_rfc3339_stamps_and_order(rfc_lines: list[str]) -> None:
    stamps = [line.split(" ", 1)[0] for line in rfc_lines]
    assert all(RFC3339_TS.match(s) for s in stamps)
    assert stamps[0].startswith("2026-10-05T23:5")
    assert stamps[-1].startswith("2026-10-06T")
    times = [rfc_us(s) for s in stamps]
    assert times == sorted(times)


def test_rfc3339_uses_the_start_offset() -> None:
    lines = mixed(200, fmt="rfc3339", start="2026-10-16T09:00:00+09:00").splitlines()
    assert lines[0].startswith("2026-10-16T09:00:0")
    assert all(line.split(" ", 1)[0].endswith("+09:00") for line in lines)


# ----------------------------------------------------------------------------- mixed traffic
def test_about_ten_percent_of_lines_are_not_postfix(
    classic_lines: list[tuple[str, str, str]],
) -> None:
    others = sum(not prog.startswith("postfix") for _, prog, _ in classic_lines)
    assert 0.08 <= others / len(classic_lines) <= 0.13


def test_a_third_of_queue_ids_are_long_and_decode_to_their_first_line(
    rfc_lines: list[str],
) -> None:
    first_seen: dict[str, int] = {}
    for line in rfc_lines:
        m = parse(line)
        q = QID.match(m["msg"])
        if q and q[1] not in first_seen:
            first_seen[q[1]] = rfc_us(m["ts"])
    long_ids = [qid for qid in first_seen if len(qid) >= 12]
    assert 0.27 <= len(long_ids) / len(first_seen) <= 0.40
    assert all(LONG_QID.match(qid) for qid in long_ids)
    assert all(10 <= len(qid) <= 11 for qid in first_seen if len(qid) < 12)
    alphabet = genlog.SAFE_CHARS
    for qid in long_ids:  # the name is the queue file's creation time: its first line
        sec = usec = 0
        for ch in qid[:6]:
            sec = sec * 52 + alphabet.index(ch)
        for ch in qid[6:10]:
            usec = usec * 52 + alphabet.index(ch)
        assert sec * 1_000_000 + usec == first_seen[qid], qid


def test_short_ids_are_reused_only_after_removed(
    classic_lines: list[tuple[str, str, str]],
) -> None:
    live: set[str] = set()
    removed: set[str] = set()
    reused = 0
    for _, _, msg in classic_lines:
        q = QID.match(msg)
        if not q:
            continue
        qid = q[1]
        if msg.endswith(": removed"):
            assert qid in live, f"removed before created: {msg}"
            live.discard(qid)
            removed.add(qid)
        elif qid not in live and ("client=" in msg or "uid=" in msg or "message-id=" in msg):
            reused += qid in removed
            live.add(qid)
    assert reused >= 3


def test_null_sender_smtp_background_stays_below_a_storm_rule(
    classic_lines: list[tuple[str, str, str]],
) -> None:
    """A few legitimate bounces an hour leave by smtp; never 10 in 60 s."""
    senders: dict[str, str] = {}
    times: list[int] = []
    for ts, prog, msg in classic_lines:
        q = QID.match(msg)
        if not q:
            continue
        if prog == "postfix/qmgr" and "from=<" in msg:
            senders[q[1]] = msg.split("from=<", 1)[1].split(">", 1)[0]
        elif (
            prog.endswith("/smtp")
            and "status=sent" in msg
            and "relay=127.0.0.1" not in msg
            and senders.get(q[1]) == ""
        ):
            times.append(classic_s(ts))
    hours = (classic_s(classic_lines[-1][0]) - classic_s(classic_lines[0][0])) / 3600
    assert 1 <= len(times) / hours <= 8
    assert max_in_window(times, 60) < 10


def max_in_window(times: list[int], width: int) -> int:
    best = j = 0
    for i, t in enumerate(times):
        while t - times[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_embedded_storm_trips_a_null_sender_rule(rfc_lines: list[str]) -> None:
    senders: dict[str, str] = {}
    times: list[int] = []
    loops = 0
    for line in rfc_lines:
        m = parse(line)
        q = QID.match(m["msg"])
        if not q:
            continue
        loops += "mail forwarding loop for" in m["msg"]
        if m["prog"] == "postfix/qmgr" and "from=<" in m["msg"]:
            senders[q[1]] = m["msg"].split("from=<", 1)[1].split(">", 1)[0]
        elif m["prog"] == "postfix/smtp" and "status=sent" in m["msg"] and senders.get(q[1]) == "":
            times.append(rfc_us(m["ts"]) // 1_000_000)
    assert max_in_window(times, 60) >= 200  # ~5/s
    j = 0
    tripped: list[int] = []  # times at which "10 in 60 s" holds
    for i, t in enumerate(times):
        while t - times[j] >= 60:
            j += 1
        if i - j + 1 >= 10:
            tripped.append(t)
    assert 200 <= tripped[-1] - tripped[0] <= 260  # about four minutes
    assert loops >= 1000


def test_only_documentation_names_and_addresses(rfc_lines: list[str], incident_text: str) -> None:
    text = "\n".join([*rfc_lines, incident_text])
    ips = set(IPV4.findall(text))
    assert ips
    assert all(ip.startswith(DOC_IPV4) for ip in ips), sorted(ips)
    names = {name.lstrip("@.").lower() for name in DOMAIN.findall(text)}
    assert all(EXAMPLE.search(n) or n == "localhost" for n in names), sorted(names)
    v6 = set(re.findall(r"\[([0-9a-f:]*:[0-9a-f:]*)\]", text))
    assert v6
    assert all(a.startswith("2001:db8:") for a in v6), sorted(v6)


# ----------------------------------------------------------------------------- the incident
def test_incident_counts_and_times(incident_text: str) -> None:
    lines = incident_text.splitlines()
    assert all(CLASSIC_TS.match(line[:15]) and line.startswith("Oct 16 ") for line in lines)
    stamps = [classic_s(line[:15]) for line in lines]
    assert stamps == sorted(stamps)
    senders: dict[str, str] = {}
    sent: list[tuple[str, str]] = []  # (time, domain)
    sasl = 0
    for line in lines:
        m = parse(line)
        q = QID.match(m["msg"])
        if not q:
            continue
        if m["prog"] == "postfix/qmgr" and "from=<" in m["msg"]:
            senders[q[1]] = m["msg"].split("from=<", 1)[1].split(">", 1)[0]
        if m["prog"] == "postfix/smtp" and senders.get(q[1]) == "":
            assert f"relay={genlog.INCIDENT_RELAY}" in m["msg"]
            if "status=sent" in m["msg"]:
                to = m["msg"].split("to=<", 1)[1].split(">", 1)[0]
                sent.append((m["ts"][7:], to.rsplit("@", 1)[1]))
            else:
                assert "status=deferred (SASL authentication failed;" in m["msg"]
                sasl += 1
    # the seed: 1000 sent between 17:52:52 and 17:55:59, per the seed's domain table
    assert len(sent) == genlog.INCIDENT_BOUNCES_SENT == 1000
    assert sent[0][0] == "17:52:52"
    assert sent[-1][0] == "17:55:59"
    assert Counter(d for _, d in sent) == genlog.INCIDENT_BOUNCES_BY_DOMAIN
    assert sasl >= genlog.INCIDENT_SASL_DEFERRED_IN_WINDOW
    # every status=sent that is not procmail's is one of those (the seed's grep)
    assert sum("status=sent" in ln and "procmail" not in ln for ln in lines) == 1000


def test_incident_seed_lines(incident_text: str) -> None:
    text = incident_text
    first_error = next(line for line in text.splitlines() if "postfix/error[" in line)
    assert first_error.startswith("Oct 16 18:03:01 mailhub postfix/error[6078]: ")
    assert (
        "relay=none, delay=550, delays=549/0.73/0/0.03, dsn=4.3.0, "
        "status=deferred (mail transport unavailable)" in first_error
    )
    assert "Oct 16 17:50:06 mailhub fetchmail[5447]: " in text
    assert "Oct 16 17:52:32 mailhub fetchmail[5481]: " in text
    assert re.search(r"^Oct 16 18:00:27 mailhub fetchmail\[5481\]: .*2", text, re.M)
    assert "Oct 16 18:29:35 mailhub postfix/master[4208]: reload configuration /etc/postfix" in text
    assert re.search(
        r"fetchmail\[5481\]: SMTP< 250 2\.0\.0 Ok: queued as [0-9A-F]{10,11}$", text, re.M
    )
    assert re.search(r"conn_use=\d+, delay=", text)
    assert "dsn=5.4.6, status=bounced (mail forwarding loop for listuser@localhost)" in text
    assert re.search(r"message-id=<20111016085252\.[0-9A-F]+@mailhub\.example\.jp>", text)
    assert len(text.encode()) < 1_500_000


def test_checked_in_demo_matches_the_generator(incident_text: str) -> None:
    assert DEMO.read_text(encoding="utf-8") == incident_text, (
        "watcher/data/demo-incident.log is stale: regenerate it with "
        "python benchmarks/genlog.py --scenario incident -o watcher/data/demo-incident.log"
    )
