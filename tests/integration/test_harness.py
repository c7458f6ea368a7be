"""The end-to-end harness works for real: sink, private Postfix, storm, freeze, fetchmail.

Each Postfix test gets its own instance under its own directory (see
``harness/postfix.py``); the machine's /etc/postfix is only read (meta files).
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import loop_post
from tests.integration.harness.fetchmail import FetchmailDaemon
from tests.integration.harness.messages import DEFAULT_LIST, paced
from tests.integration.harness.pop3 import DovecotPop3
from tests.integration.harness.postfix import (
    MAILLOG_LINE,
    MAILLOG_TIMESTAMP_FORMAT,
    PostfixInstance,
)
from tests.integration.harness.requires import (
    WaitTimeout,
    require_programs,
    wait_for,
)
from tests.integration.harness.sink import SmtpSink

SAMPLE_MAILLOG = Path(__file__).parent / "harness" / "sample-maillog.txt"
LIST = DEFAULT_LIST


# ----- helpers without real programs


def test_wait_for_returns_the_first_truthy_result() -> None:
    calls: list[int] = []

    def third_time() -> list[int]:
        calls.append(1)
        return calls if len(calls) >= 3 else []

    assert wait_for(third_time, 5, "three calls", interval=0.001) == [1, 1, 1]


def test_wait_for_names_what_it_awaited_and_what_it_saw() -> None:
    with pytest.raises(WaitTimeout, match=r"waiting for the moon; last seen: 'cheese'"):
        wait_for(lambda: False, 0.05, "the moon", seen=lambda: "cheese", interval=0.01)


def test_a_missing_program_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"needs no-such-program-xyz"):
        require_programs("no-such-program-xyz")


def test_a_missing_program_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"needs no-such-program-xyz.*CI=true"):
        require_programs("no-such-program-xyz")


def test_paced_yields_on_schedule() -> None:
    times = [(index, time.monotonic()) for index in paced(3, 50.0, start=7)]
    assert [index for index, _ in times] == [7, 8, 9]
    assert times[2][1] - times[0][1] >= 2 / 50.0


def test_the_sample_maillog_has_the_postlogd_line_shape() -> None:
    lines = SAMPLE_MAILLOG.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 25
    for line in lines:
        parsed = MAILLOG_LINE.match(line)
        assert parsed, line
        datetime.strptime(parsed["time"], MAILLOG_TIMESTAMP_FORMAT)  # noqa: DTZ007 (no zone in the log)


def test_the_sink_records_envelope_time_and_data(sink: SmtpSink) -> None:
    with smtplib.SMTP(sink.host, sink.port, local_hostname="client.example.net") as smtp:
        smtp.sendmail("", ["a@example.net"], b"Subject: one\r\n\r\nnull sender\r\n")
        smtp.sendmail(
            "x@example.org", ["b@example.net", "c@example.net"], b"Subject: two\r\n\r\n2\r\n"
        )
    first, second = sink.wait_for_count(2, 5)
    assert (first.mail_from, first.rcpt_tos, first.null_sender) == ("", ("a@example.net",), True)
    assert first.message()["Subject"] == "one"
    assert (second.mail_from, second.rcpt_tos) == (
        "x@example.org",
        ("b@example.net", "c@example.net"),
    )
    assert first.received_mono <= second.received_mono
    assert sink.bounces() == [first]


# ----- a private Postfix


@pytest.mark.integration
def test_private_postfix_delivers_locally_and_relays_out(
    make_postfix: Callable[..., PostfixInstance], sink: SmtpSink
) -> None:
    etc_main_cf_existed = Path("/etc/postfix/main.cf").exists()
    postfix = make_postfix()

    assert postfix.master_running()
    assert postfix.param("config_directory") == str(postfix.config_dir)
    assert postfix.param("maillog_file") == str(postfix.log_path)
    names = {p.name() for p in postfix.processes()}
    assert {"master", "qmgr", "pickup", "postlogd"} <= names

    local_id = postfix.inject("someone@example.net", postfix.inbox_address, subject="for the inbox")
    out_id = postfix.inject(f"me@{postfix.domain}", "bob@example.net", subject="for outside")

    postfix.wait_for_log(
        rf"{local_id}: to=<{postfix.inbox_address}>, relay=local, .*status=sent \(delivered to file",
        15,
    )
    (escaped,) = sink.wait_for_count(1, 15)
    assert (escaped.mail_from, escaped.rcpt_tos) == (f"me@{postfix.domain}", ("bob@example.net",))
    assert escaped.message()["Subject"] == "for outside"
    postfix.wait_for_log(
        rf"{out_id}: to=<bob@example.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{sink.port}, .*status=sent",
        15,
    )
    assert [m["Subject"] for m in postfix.inbox_messages()] == ["for the inbox"]
    assert Path("/etc/postfix/main.cf").exists() == etc_main_cf_existed


@pytest.mark.integration
def test_the_alias_loop_bounces_and_the_bounce_escapes_with_a_null_sender(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    loop_post(postfix, 1)

    (bounce,) = sink.wait_for_count(
        1, 15, where=lambda m: m.null_sender, what="null-sender bounces"
    )
    assert bounce.rcpt_tos == (LIST.bounce_address,)
    report = bounce.message()
    assert report.get_content_type() == "multipart/report"
    assert "mail forwarding loop for looper@stormwatch.test" in bounce.data.decode()

    (looped,) = postfix.wait_for_log(
        r"postfix/local\[\d+\]: (?P<qid>\w+): to=<looper@stormwatch\.test>, relay=local, "
        r".*dsn=5\.4\.6, status=bounced \(mail forwarding loop for looper@stormwatch\.test\)",
        15,
    )
    (notice,) = postfix.wait_for_log(
        rf"postfix/bounce\[\d+\]: {looped['qid']}: sender non-delivery notification: (?P<new>\w+)",
        15,
    )
    new = notice["new"]
    postfix.wait_for_log(
        rf"postfix/qmgr\[\d+\]: {new}: from=<>, size=\d+, nrcpt=1 \(queue active\)", 15
    )
    postfix.wait_for_log(
        rf"postfix/smtp\[\d+\]: {new}: to=<{re.escape(LIST.bounce_address)}>, "
        rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{sink.port}, .*dsn=2\.0\.0, status=sent",
        15,
    )
    postfix.wait_for_log(rf"postfix/qmgr\[\d+\]: {new}: removed", 15)
    for line in postfix.log_lines():
        assert MAILLOG_LINE.match(line), f"unexpected maillog line shape: {line!r}"


@pytest.mark.integration
def test_freeze_keeps_later_bounces_queued_and_postsuper_holds_them(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    loop_post(postfix, 1)
    sink.wait_for_count(1, 15, what="the bounce made before the freeze")

    # Outflow first: a bounce made now is deferred on the smtp transport, not sent.
    postfix.postconf("-e", "defer_transports=smtp")
    postfix.hup_master()
    loop_post(postfix, 2)
    (deferred,) = postfix.wait_for_log(
        r"(?P<qid>\w+): to=<list-bounces@lists\.example\.org>, relay=none, .*"
        r"status=deferred \(deferred transport\)",
        15,
    )
    # Then bounces: with soft_bounce the looping original stays queued instead.
    postfix.postconf("-e", "soft_bounce=yes")
    postfix.hup_master()
    loop_post(postfix, 3)
    (soft,) = postfix.wait_for_log(
        r"(?P<qid>\w+): to=<looper@stormwatch\.test>, relay=local, .*dsn=4\.4\.6, "
        r"status=SOFTBOUNCE \(mail forwarding loop for looper@stormwatch\.test\)",
        15,
    )
    assert postfix.param("soft_bounce") == "yes"
    assert postfix.param("defer_transports") == "smtp"

    queue = {entry["queue_id"]: entry for entry in postfix.queue_json()}
    assert set(queue) == {deferred["qid"], soft["qid"]}
    # The null sender, as postqueue shows it:
    assert queue[deferred["qid"]]["sender"] == "MAILER-DAEMON"
    assert queue[soft["qid"]]["sender"] == LIST.bounce_address
    assert {entry["queue_name"] for entry in queue.values()} == {"deferred"}

    report = postfix.postsuper("-h", "-", stdin="".join(f"{qid}\n" for qid in queue))
    assert "Placed on hold: 2 messages" in report

    held = postfix.queue_json()
    assert sorted(entry["queue_id"] for entry in held) == sorted(queue)  # nothing deleted
    assert {entry["queue_name"] for entry in held} == {"hold"}
    assert len(sink.messages) == 1, "only the bounce made before the freeze escaped"


@pytest.mark.integration
def test_a_backdated_main_cf_makes_sighup_take_effect_at_once(postfix: PostfixInstance) -> None:
    # A freshly written main.cf is "hot": Postfix programs re-read it every 300 ms
    # until it is over a second old, so a reload right after postconf -e lags ~2 s.
    postfix.postconf("-e", "defer_transports=smtp")
    postfix.backdate_main_cf()
    postfix.hup_master(wait=1.0)  # every old daemon gone within 1 s (measured: ~5 ms)
    assert postfix.param("defer_transports") == "smtp"


@pytest.mark.integration
def test_two_private_instances_run_side_by_side(
    make_postfix: Callable[..., PostfixInstance], sink: SmtpSink
) -> None:
    first = make_postfix("first")
    second = make_postfix("second", syslog_name="postfix-out", long_queue_ids=True)
    assert first.master_pid() != second.master_pid()
    assert first.smtpd_port != second.smtpd_port

    first_id = first.inject("a@example.net", "out1@example.net")
    second_id = second.inject("b@example.net", "out2@example.net")
    sink.wait_for_count(2, 15)
    assert re.fullmatch(r"[0-9A-F]{6,}", first_id), first_id
    assert len(second_id) >= 12, second_id  # long queue ID
    second.wait_for_log(rf"postfix-out/smtp\[\d+\]: {second_id}: .*status=sent", 15)
    assert first_id not in second.log_text()
    assert second_id not in first.log_text()

    second.stop()
    assert not second.master_running()
    assert second.processes() == []
    assert first.master_running()


# ----- fetchmail and dovecot


def fetchmail_into(
    root: Path, pop3: DovecotPop3, postfix: PostfixInstance, deliver_to: str
) -> FetchmailDaemon:
    return FetchmailDaemon(
        root / "fetchmail",
        pop3_port=pop3.port,
        pop3_user=pop3.user,
        pop3_password=pop3.password,
        smtp_port=postfix.smtpd_port,
        deliver_to=deliver_to,
    )


@pytest.mark.integration
def test_fetchmail_pulls_list_mail_into_postfix_and_dies_on_sigint(
    root: Path, pop3: DovecotPop3, postfix: PostfixInstance
) -> None:
    assert pop3.load_list_mail(3) == 3
    assert pop3.stat()[0] == 3
    daemon = fetchmail_into(root, pop3, postfix, postfix.inbox_address)
    with daemon:
        assert psutil.Process(daemon.pid).name() == "fetchmail"
        postfix.wait_for_log(
            r"qmgr\[\d+\]: \w+: from=<list-bounces@lists\.example\.org>, .*\(queue active\)",
            20,
            count=3,
        )
        postfix.wait_for_log(r"status=sent \(delivered to file", 20, count=3)
        wait_for(lambda: pop3.waiting() == 0, 10, "the POP3 mailbox to be emptied")

        daemon.interrupt()
        status = daemon.wait(10)
    assert status == 0, daemon.output()[-500:]
    assert "terminated with signal 2" in daemon.output()
    assert daemon.returncode == 0
    inbox = postfix.inbox_messages()
    assert sorted(m["Subject"] for m in inbox) == [f"[announce] post {i}" for i in (1, 2, 3)]
    assert {m["List-Id"] for m in inbox} == {f"{LIST.name} {LIST.list_id}"}
    assert {m["Return-Path"] for m in inbox} == {f"<{LIST.bounce_address}>"}


@pytest.mark.integration
def test_sigint_mid_poll_leaves_the_messages_on_the_pop3_server(
    root: Path, pop3: DovecotPop3, make_postfix: Callable[..., PostfixInstance]
) -> None:
    # smtpd pauses 1 s per recipient, so the poll of 4 messages lasts >= 4 s.
    postfix = make_postfix(
        main={"smtpd_recipient_restrictions": "sleep 1, permit_mynetworks, reject"}
    )
    pop3.load_list_mail(4)
    daemon = fetchmail_into(root, pop3, postfix, postfix.inbox_address)
    with daemon:
        wait_for(lambda: "queued as" in daemon.output(), 15, "fetchmail to forward one message")
        daemon.interrupt()
        daemon.wait(10)
    output = daemon.output()
    assert "poll completed" not in output
    assert "POP3> QUIT" not in output
    # No QUIT: dovecot undoes the DELEs, so the forwarded messages come again next time.
    wait_for(lambda: pop3.waiting() == 4, 10, "all 4 messages still on the POP3 server")
    assert pop3.stat()[0] == 4
    postfix.wait_for_log(r"postfix/smtpd\[\d+\]: \w+: client=", 10)
