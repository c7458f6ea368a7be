#!/usr/bin/env python3
"""The kill switch against a real storm: how much escapes, how fast it stops.

Runs the test harness's private Postfix (a forwarding loop, relaying to a
loopback SMTP sink that records what escaped), ``stormwatch run`` as its own
process following the instance's maillog_file with the default rules, and a
loopback webhook for the page. Two ways in:

* ``fetchmail``: a real fetchmail daemon pulls list mail from a private
  dovecot POP3 server into the loop, as in the incident, as fast as it can;
* ``smtp``: list mail arrives straight into Postfix by SMTP at ``--rate``
  per second for ``--seconds`` (no fetchmail to stop: Postfix alone must
  contain it while mail keeps arriving).

And two floods that are not bounces, where only the offender is to be stopped
(``contain-offender``), at ``--rate`` a second for ``--seconds``, each message to
another remote recipient:

* ``sasl``: a stolen SASL account (dovecot auth) while four honest accounts send;
* ``sendmail``: a script looping over sendmail(1) as a dedicated local user
  (created for the run, deleted after) while local users send by SMTP.

For these, "escaped" is the offender's messages that reached the sink, "stopped"
the time from the latch to its new mail being blocked (the reload), and
"queued"/"held" its messages left in the queue.

Local users send ordinary mail to remote recipients (``--legit`` a second) the
whole time. Reports, for each: bounces that reached the sink, time from the
watcher latching on the threshold-crossing line to the outflow being stopped
(the first Postfix step's outcome: the scoped containment, or the freeze) and
to the page arriving, the share of legitimate messages submitted after that
which were delivered within 15 s, storm messages still queued and how many
are on hold, and messages deleted. Needs root, postfix, dovecot and
fetchmail (``.ci/run`` installs them). A benchmark, not a test: it asserts
nothing.

Usage::

    python benchmarks/bench_storm.py [--way fetchmail smtp] [--rate 5] [--seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.harness.fetchmail import FetchmailDaemon  # noqa: E402
from tests.integration.harness.localuser import LocalUser  # noqa: E402
from tests.integration.harness.messages import DEFAULT_LIST, paced  # noqa: E402
from tests.integration.harness.pop3 import DovecotPop3  # noqa: E402
from tests.integration.harness.postfix import PostfixInstance, private_root  # noqa: E402
from tests.integration.harness.requires import WaitTimeout, wait_for  # noqa: E402
from tests.integration.harness.sasl import DovecotAuth, submit  # noqa: E402
from tests.integration.harness.sink import SmtpSink  # noqa: E402
from tests.integration.harness.traffic import LegitTraffic  # noqa: E402
from tests.integration.harness.webhook import Webhook  # noqa: E402


def _latch(state: Path) -> dict[str, Any]:
    path = state / "latch.json"
    return json.loads(path.read_text()) if path.exists() else {"tripped": False}


def _storm_queue(postfix: PostfixInstance) -> list[dict[str, Any]]:
    return [
        e
        for e in postfix.queue_json()
        if e["sender"] == "MAILER-DAEMON"
        or any("forwarding loop" in r.get("delay_reason", "") for r in e["recipients"])
        or any(r["address"] == postfix.loop_address for r in e["recipients"])
    ]


def run_once(
    way: str, rate: float, seconds: float, posts: int, legit_rate: float, fetchlimit: int
) -> dict[str, Any]:
    with (
        SmtpSink() as sink,
        private_root("stormwatch-bench-") as root,
        Webhook() as hook,
        PostfixInstance(root / "postfix", relayhost=sink.relayhost) as postfix,
    ):
        state, watcher = _watch(root, postfix, hook)
        legit = LegitTraffic(postfix, sink, rate=legit_rate)
        try:
            wait_for(lambda: (state / "status.json").exists(), 30, "the watcher to start")
            legit.start()
            if way == "fetchmail":
                with DovecotPop3(root / "pop3") as pop3:
                    pop3.load_list_mail(posts)
                    fm = FetchmailDaemon(
                        root / "fetchmail", pop3_port=pop3.port, pop3_user=pop3.user,
                        pop3_password=pop3.password, smtp_port=postfix.smtpd_port,
                        deliver_to=postfix.loop_address, fetchlimit=fetchlimit,
                    ).start()  # fmt: skip
                    try:
                        wait_for(lambda: len(_latch(state).get("actions", ())) >= 4, 60,
                                 "the trip")  # fmt: skip
                        fm.wait(30)
                    finally:
                        fm.stop()
            else:
                for i in paced(int(rate * seconds), rate):
                    postfix.inject(
                        DEFAULT_LIST.bounce_address,
                        postfix.loop_address,
                        DEFAULT_LIST.message(i, to=postfix.loop_address),
                    )

            # let the last sweeps run (every few seconds while tripped)
            def settled() -> list[dict[str, Any]] | None:
                q = _storm_queue(postfix)
                return q if q and all(e["queue_name"] == "hold" for e in q) else None

            with contextlib.suppress(WaitTimeout):  # reported below as queued vs held
                wait_for(settled, 30, "every storm message on hold")
            queued = _storm_queue(postfix)
            arrived = postfix.log_text().count(": client=") - len(legit.sent)  # the storm's
            latch = _latch(state)
            page = hook.wait_for(1, 30, containing="TRIPPED")[0]
            stopped_at = _stopped_at(latch)
            # legitimate mail submitted in the 20 s after the trip, 15 s each to arrive
            wait_for(lambda: time.time() > stopped_at + 36, 120, "the legitimate mail's time")
            got = legit.report(stopped_at, within=15)
        finally:
            legit.stop()
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(30)
        since = float(latch["since_epoch"])
        actions = {a["kind"]: a for a in latch["actions"]}
        return {
            "way": way,
            "arrived": arrived,
            "escaped": len(sink.bounces()),
            "rule": latch["incident"]["rule"],
            "outflow_stopped_ms": round((stopped_at - since) * 1000, 1),
            "step": "freeze" if "contain-postfix" not in actions else "contain",
            "legit": f"{got.delivered}/{got.submitted}",
            "page_ms": round((page.received_at - since) * 1000, 1),
            "storm_queued": len(queued),
            "held": sum(1 for e in queued if e["queue_name"] == "hold"),
            "deleted": postfix.log_text().count("Deleted:"),
            "fetchmail": actions.get("stop-fetchmail", {}).get("summary", ""),
        }


HONEST = {"alice": "alice-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw"}


def run_offender(way: str, rate: float, seconds: float, legit_rate: float) -> dict[str, Any]:
    """A flood from one origin (``sasl`` or ``sendmail``) beside honest mail."""
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(SmtpSink())
        root = stack.enter_context(private_root("stormwatch-bench-"))
        hook = stack.enter_context(Webhook())
        main: dict[str, str] = {}
        auth = user = None
        if way == "sasl":
            auth = stack.enter_context(DovecotAuth(root / "auth", {"mallory": "x", **HONEST}))
            main = auth.main_cf()
        else:
            user = stack.enter_context(LocalUser("swbench"))
        postfix = stack.enter_context(
            PostfixInstance(root / "postfix", relayhost=sink.relayhost, main=main)
        )
        sender = "mallory@stormwatch.test" if way == "sasl" else f"swbench@{postfix.domain}"

        def flood(i: int) -> None:
            rcpt = f"victim-{i}@dest-{i % 7}.example"
            if user is not None:
                user.sendmail(postfix, rcpt, "flood")
            else:
                submit(postfix.smtpd_port, "mallory", "x", [rcpt], "flood")

        state, watcher = _watch(root, postfix, hook)
        legit = LegitTraffic(postfix, sink, rate=legit_rate, logins=HONEST if auth else None)
        try:
            wait_for(lambda: (state / "status.json").exists(), 30, "the watcher to start")
            legit.start()
            for i in paced(int(rate * seconds), rate):
                flood(i)

            def ours() -> list[dict[str, Any]]:
                return [e for e in postfix.queue_json() if e["sender"] == sender]

            with contextlib.suppress(WaitTimeout):
                wait_for(lambda: all(e["queue_name"] == "hold" for e in ours()), 30, "held")
            queued = ours()
            latch = _latch(state)
            page = hook.wait_for(1, 30, containing="TRIPPED")[0]
            step = next(a for a in latch["actions"] if a["kind"] == "contain-offender")
            stopped_at = float(step["details"].get("blocked_at") or time.time())
            wait_for(lambda: time.time() > stopped_at + 36, 120, "the legitimate mail's time")
            got = legit.report(stopped_at, within=15)
        finally:
            legit.stop()
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(30)
        since = float(latch["since_epoch"])
        return {
            "way": way,
            "arrived": int(rate * seconds),
            "escaped": sum(1 for m in sink.messages if m.mail_from == sender),
            "rule": latch["incident"]["rule"],
            "outflow_stopped_ms": round((stopped_at - since) * 1000, 1),
            "step": "freeze" if any(a["kind"] == "freeze-postfix" for a in latch["actions"])
            else "offender",
            "legit": f"{got.delivered}/{got.submitted}",
            "page_ms": round((page.received_at - since) * 1000, 1),
            "storm_queued": len(queued),
            "held": sum(1 for e in queued if e["queue_name"] == "hold"),
            "deleted": postfix.log_text().count("Deleted:"),
            "fetchmail": step["details"].get("offender", ""),
        }  # fmt: skip


def _watch(
    root: Path, postfix: PostfixInstance, hook: Webhook
) -> tuple[Path, subprocess.Popen[bytes]]:
    """``stormwatch run`` on the instance's maillog_file, paging ``hook``."""
    state = root / "state"
    config = root / "stormwatch.toml"
    config.write_text(
        f'state_dir = "{state}"\n[postfix]\nconfig_directory = "{postfix.config_dir}"\n'
        f'[notify]\nurls = ["{hook.apprise_url}"]\ntimeout_seconds = 5\n'
        "[fetchmail]\nsigterm_after_seconds = 5\n"
    )
    with open(root / "stormwatch.out", "wb") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(config),
             "--source", f"file:{postfix.log_path}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return state, watcher


def _stopped_at(latch: dict[str, Any]) -> float:
    """When the first Postfix step stopped the bounces: the scoped containment's reload
    (before its recipient hold, which follows), or the freeze."""
    done = [a for a in latch["actions"] if a["kind"] in ("contain-postfix", "freeze-postfix")]
    return min(
        float(a["details"].get("bounces_held_at") or datetime.fromisoformat(a["at"]).timestamp())
        for a in done
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--way",
        nargs="+",
        choices=("fetchmail", "smtp", "sasl", "sendmail"),
        default=["fetchmail", "smtp", "sasl", "sendmail"],
    )
    ap.add_argument("--rate", type=float, default=5.0, help="smtp: storm messages per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="smtp: how long mail keeps coming")
    ap.add_argument("--posts", type=int, default=200, help="fetchmail: list posts waiting")
    ap.add_argument(
        "--fetchlimit",
        type=int,
        default=0,
        help="fetchmail: messages per poll (one poll a second); 0: all at once",
    )
    ap.add_argument("--legit", type=float, default=2.0, help="legitimate messages per second")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
    head = ("way", "arrived", "escaped", "stopped ms", "page ms", "legit 15s", "queued", "held",
            "deleted")  # fmt: skip
    print("{:>10} {:>8} {:>8} {:>11} {:>8} {:>10} {:>7} {:>6} {:>8}".format(*head))
    for way in args.way:
        for _ in range(args.runs):
            r = (
                run_offender(way, args.rate, args.seconds, args.legit)
                if way in ("sasl", "sendmail")
                else run_once(way, args.rate, args.seconds, args.posts, args.legit, args.fetchlimit)
            )
            print(
                f"{r['way']:>10} {r['arrived']:>8} {r['escaped']:>8} {r['outflow_stopped_ms']:>11}"
                f" {r['page_ms']:>8} {r['legit']:>10} {r['storm_queued']:>7} {r['held']:>6}"
                f" {r['deleted']:>8}   ({r['rule']}, {r['step']}; {r['fetchmail'][:50]})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
