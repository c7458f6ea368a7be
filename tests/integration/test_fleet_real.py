"""Shared windows across hosts, with a real redis-server on loopback and real
``stormwatch run`` processes, each following its own log as its own host.

* Two hosts, each below ``trip_at`` alone, above it together: both trip, and
  each incident names both hosts' shares.
* Redis killed mid-run: both go on with their local windows (one trips on its
  own), both page the outage; Redis back (empty): both page the resume, send
  their windows again, nothing is lost, and the other trips on the fleet's count.
* A log read again after a lost checkpoint is not counted twice.
* The fleet latch: one host trips alone; the other pages that, stays armed, and
  ``stormwatch fleet status`` lists both, their latch and their lag; with
  ``on_trip = "ladder"`` the other trips the same rule itself, and ``stormwatch
  fleet rearm`` re-arms both.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests import logshapes as L
from tests.integration.harness.redis import RedisServer
from tests.integration.harness.requires import wait_for
from tests.integration.harness.stormwatch import Watchers, cli, latch
from tests.integration.harness.webhook import Webhook
from watcher.core.fleet import store_key

pytestmark = pytest.mark.integration

FLEET = "test"
RULE = """[[rule]]
name = "bs"
trip_at = 10
shared = true
actions = ["notify"]
[rule.match]
event = "delivery"
sender = "null"
statuses = ["sent"]
remote = true
[rule.window]
seconds = 3600
"""


class Host:
    """One watcher host: its log, state, settings, webhook and process."""

    def __init__(
        self, tmp_path: Path, name: str, url: str, hook: Webhook, on_trip: str = "page"
    ) -> None:
        self.name = name
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.log = self.dir / "mail.log"
        self.log.write_text(L.removed(0, "AAAAAA0001") + "\n")
        self.state = self.dir / "state"
        rules = self.dir / "rules"
        rules.mkdir()
        (rules / "bs.toml").write_text(RULE)
        self.config = self.dir / "stormwatch.toml"
        self.config.write_text(
            f'state_dir = "{self.state}"\ntimezone = "UTC"\nbundled_rules = false\n'
            f"rules_dirs = [{json.dumps(str(rules))}]\n"
            f"[notify]\nurls = [{json.dumps(hook.apprise_url)}]\nretries = 0\n"
            f'[fleet]\nurl = "{url}"\nname = "{FLEET}"\nhost = "{name}"\n'
            "timeout_seconds = 0.5\nretry_seconds = 0.5\npoll_seconds = 0.2\n"
            f'on_trip = "{on_trip}"\n'
        )
        self.hook = hook
        self.n = 0  # bounces written
        self.index = -1

    def start(self, watchers: Watchers) -> None:
        self.index = len(watchers.procs)
        self.proc = watchers.start("--config", str(self.config), "--source", f"file:{self.log}")
        wait_for(lambda: "watching" in watchers.output(self.index), 20,
                 f"{self.name}'s watcher to start", seen=lambda: watchers.output(self.index))  # fmt: skip

    def bounces(self, n: int) -> None:
        """``n`` null-sender bounces relayed out, numbered on from the last (queue IDs
        differ per host: the host's number is in them)."""
        base = 1000 * (ord(self.name[-1]) - ord("0"))
        lines: list[str] = []
        for i in range(self.n, self.n + n):
            lines += L.remote_bounce(60 + i, base + i)
        self.n += n
        with self.log.open("a") as f:
            f.write("\n".join(lines) + "\n")

    def status(self) -> dict[str, Any]:
        path = self.state / "status.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def fleet(self) -> dict[str, Any]:
        out: dict[str, Any] = self.status().get("fleet", {})
        return out

    def wait_shared(self, n: int, timeout: float = 30) -> None:
        wait_for(lambda: self.fleet().get("shared", 0) >= n and self.fleet().get("redis") == "up",
                 timeout, f"{self.name} to have shared {n} match(es)", seen=self.fleet)  # fmt: skip

    def report(self) -> dict[str, Any]:
        (folder,) = (self.state / "incidents").iterdir()
        data: dict[str, Any] = json.loads((folder / "report.json").read_text())
        return data


@pytest.fixture
def hooks() -> Iterator[tuple[Webhook, Webhook]]:
    with Webhook() as one, Webhook() as two:
        yield one, two


def _two_hosts(
    tmp_path: Path,
    server: RedisServer,
    hooks: tuple[Webhook, Webhook],
    watchers: Watchers,
    *,
    on_trip: str = "page",
) -> tuple[Host, Host]:
    """mx1 and mx2 on one fleet, started; mx2 with ``on_trip``."""
    mx1 = Host(tmp_path, "mx1", server.url, hooks[0])
    mx2 = Host(tmp_path, "mx2", server.url, hooks[1], on_trip=on_trip)
    mx1.start(watchers)
    mx2.start(watchers)
    return mx1, mx2


def _fleet_hosts(host: Host) -> dict[str, Any]:
    done = cli("fleet", "status", "--json", "--config", str(host.config))
    assert done.returncode == 0, done.stderr
    return {h["host"]: h for h in json.loads(done.stdout)["hosts"]}


def _members(server: RedisServer, host: str) -> int:
    client = redis.Redis.from_url(server.url)
    try:
        return int(client.zcard(f"{store_key(FLEET, 'bs', '')}:z:{host}"))
    finally:
        client.close()


def test_two_hosts_each_below_trip_at_trip_together_and_name_both_shares(
    tmp_path: Path,
    watchers: Watchers,
    redis_server: RedisServer,
    hooks: tuple[Webhook, Webhook],
) -> None:
    mx1, mx2 = _two_hosts(tmp_path, redis_server, hooks, watchers)
    mx1.bounces(6)
    mx1.wait_shared(6)
    assert not latch(mx1.state)["tripped"], "6 alone is below trip_at 10"
    mx2.bounces(6)
    for host in (mx2, mx1):
        wait_for(lambda h=host: latch(h.state)["tripped"], 30,  # type: ignore[misc]
                 f"{host.name} to trip on the fleet's count",
                 seen=lambda h=host: watchers.output(h.index))  # type: ignore[misc]  # fmt: skip
    for host in (mx1, mx2):
        shares = dict(host.report()["fleet"])
        (folder,) = (host.state / "incidents").iterdir()
        assert "Tripped on the fleet's shared window: " in (folder / "report.md").read_text()
        assert dict(latch(host.state)["incident"]["fleet"]) == shares
        assert set(shares) == {"mx1", "mx2"}, shares
        assert all(n <= 6 for n in shares.values())
        assert sum(shares.values()) >= 10
        (page,) = host.hook.wait_for(1, 30, containing="TRIPPED")
        assert "Fleet: " in page.body["message"]
        assert "mx1 " in page.body["message"]
        assert "mx2 " in page.body["message"]
        wait_for(lambda h=host: "trips on the fleet's window" in watchers.output(h.index),  # type: ignore[misc]
                 10, f"{host.name} to log the fleet's trip")  # fmt: skip
    assert _members(redis_server, "mx1") == 6
    assert _members(redis_server, "mx2") == 6


def test_redis_killed_mid_run_hosts_count_locally_page_and_resume_losing_nothing(
    tmp_path: Path,
    watchers: Watchers,
    redis_server: RedisServer,
    hooks: tuple[Webhook, Webhook],
) -> None:
    mx1, mx2 = _two_hosts(tmp_path, redis_server, hooks, watchers)
    mx1.bounces(3)
    mx2.bounces(3)
    mx1.wait_shared(3)
    mx2.wait_shared(3)

    redis_server.kill()
    mx1.bounces(7)  # 10 on mx1 alone: its local window trips, Redis or not
    mx2.bounces(3)  # 6 on mx2: below trip_at locally
    for host in (mx1, mx2):
        host.hook.wait_for(1, 30, containing="Redis unreachable")
        assert "fleet: Redis unreachable, counting locally" in watchers.output(host.index)
    wait_for(lambda: latch(mx1.state)["tripped"], 30, "mx1 to trip on its own window",
             seen=lambda: watchers.output(mx1.index))  # fmt: skip
    assert "fleet" not in mx1.report(), "a local trip names no fleet shares"
    wait_for(lambda: mx2.status().get("lines", 0) >= 6 * 7, 30, "mx2 to read every line",
             seen=mx2.status)  # fmt: skip
    assert mx2.status()["rules"]["bs"]["window_count"] == 6  # counted locally meanwhile
    assert not latch(mx2.state)["tripped"]

    redis_server.start()  # the same port, empty
    for host in (mx1, mx2):
        host.hook.wait_for(1, 30, containing="sharing resumed")
    wait_for(lambda: latch(mx2.state)["tripped"], 30, "mx2 to trip on the fleet's count",
             seen=lambda: watchers.output(mx2.index))  # fmt: skip
    assert dict(mx2.report()["fleet"]) == {"mx1": 10, "mx2": 6}
    assert _members(redis_server, "mx1") == 10  # every line, the ones before the outage too
    assert _members(redis_server, "mx2") == 6


def test_a_log_read_again_after_a_lost_checkpoint_is_not_counted_twice(
    tmp_path: Path,
    watchers: Watchers,
    redis_server: RedisServer,
    hooks: tuple[Webhook, Webhook],
) -> None:
    mx1 = Host(tmp_path, "mx1", redis_server.url, hooks[0])
    mx1.start(watchers)
    mx1.bounces(6)
    mx1.wait_shared(6)
    mx1.proc.send_signal(signal.SIGTERM)
    assert mx1.proc.wait(20) == 0
    (checkpoint,) = (
        p for p in mx1.state.rglob("*.json") if p.name not in ("status.json", "latch.json")
    )
    saved = json.loads(checkpoint.read_text())
    saved["file"]["ino"] += 1  # not the file any more, and no rotated file is: read it from 0
    checkpoint.write_text(json.dumps(saved))

    mx1.start(watchers)
    wait_for(lambda: mx1.status().get("lines", 0) >= 6 * 7, 30, "the log read again",
             seen=mx1.status)  # fmt: skip
    mx1.wait_shared(6)
    wait_for(lambda: mx1.fleet().get("batches", 0) >= 2, 10, "a count read back", seen=mx1.fleet)
    assert mx1.status()["rules"]["bs"]["window_count"] == 6
    assert _members(redis_server, "mx1") == 6
    assert not latch(mx1.state)["tripped"], "12 would trip: the same 6 lines were counted twice"


def test_one_hosts_trip_is_paged_by_the_other_and_listed_by_fleet_status(
    tmp_path: Path,
    watchers: Watchers,
    redis_server: RedisServer,
    hooks: tuple[Webhook, Webhook],
) -> None:
    mx1, mx2 = _two_hosts(tmp_path, redis_server, hooks, watchers)
    mx1.bounces(10)
    wait_for(lambda: latch(mx1.state)["tripped"], 30, "mx1 to trip",
             seen=lambda: watchers.output(mx1.index))  # fmt: skip
    incident = latch(mx1.state)["incident"]["id"]
    (page,) = mx2.hook.wait_for(1, 30, containing="has tripped on rule")
    assert "host mx1 has tripped on rule bs" in page.body["title"]
    assert incident in page.body["message"]
    assert not latch(mx2.state)["tripped"], "mx2 saw none of it: it pages, it does not trip"
    assert mx1.hook.wait_for(1, 30, containing="TRIPPED")
    assert not [p for p in mx1.hook.posts if "has tripped on rule" in p.body["title"]]

    def listed() -> dict[str, Any] | None:
        done = cli("fleet", "status", "--json", "--config", str(mx2.config))
        assert done.returncode == 0, done.stderr
        hosts = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
        return hosts if set(hosts) == {"mx1", "mx2"} and hosts["mx1"]["tripped"] else None

    hosts = wait_for(listed, 15, "both hosts in fleet status")
    assert hosts is not None
    assert hosts["mx1"]["incident"] == incident
    assert hosts["mx1"]["rule"] == "bs"
    assert not hosts["mx2"]["tripped"]
    assert hosts["mx1"]["redis"] == hosts["mx2"]["redis"] == "up"
    assert hosts["mx1"]["lag_seconds"] == 0  # the newest
    assert hosts["mx2"]["lag_seconds"] is None  # no event of its own yet
    text = cli("fleet", "status", "--config", str(mx1.config)).stdout
    assert f"mx1: TRIPPED by bs ({incident})" in text
    assert "mx2: armed" in text


def test_with_on_trip_ladder_another_hosts_trip_trips_the_same_rule_here(
    tmp_path: Path,
    watchers: Watchers,
    redis_server: RedisServer,
    hooks: tuple[Webhook, Webhook],
) -> None:
    mx1, mx2 = _two_hosts(tmp_path, redis_server, hooks, watchers, on_trip="ladder")
    mx1.bounces(10)
    wait_for(lambda: latch(mx2.state)["tripped"], 30, "mx2 to trip on mx1's trip",
             seen=lambda: watchers.output(mx2.index))  # fmt: skip
    theirs, ours = latch(mx1.state), latch(mx2.state)
    assert ours["incident"]["rule"] == "bs"
    assert ours["incident"]["id"] != theirs["incident"]["id"]  # its own incident
    assert ours["trips"][0]["source"] == "fleet:mx1"
    assert theirs["incident"]["id"] in ours["trips"][0]["text"]
    (page,) = mx2.hook.wait_for(1, 30, containing="TRIPPED")
    assert "fleet: host mx1 tripped on rule bs" in page.body["message"]
    assert not [p for p in mx2.hook.posts if "has tripped on rule" in p.body["title"]]

    # stormwatch fleet rearm INCIDENT: every host tripped for it re-arms, on its host
    wait_for(lambda: _fleet_hosts(mx1)["mx2"]["cause"] == theirs["incident"]["id"], 15,
             "mx2 to publish the cause of its trip", seen=lambda: _fleet_hosts(mx1))  # fmt: skip
    done = cli("fleet", "rearm", theirs["incident"]["id"], "--config", str(mx1.config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "asked mx1, mx2 to re-arm" in done.stdout
    assert f"mx1: re-armed (incident {theirs['incident']['id']})" in done.stdout
    assert f"mx2: re-armed (incident {ours['incident']['id']})" in done.stdout
    for host, inc in ((mx1, theirs), (mx2, ours)):  # each archived its incident on re-arm
        assert (host.state / "incidents" / inc["incident"]["id"] / "latch.json").exists()
        host.hook.wait_for(1, 30, containing="re-armed")
