"""When it matters, it acts, with the real programs: a full disk, a failing postconf,
two watchers on one state directory, a restart while tripped.

``stormwatch run`` runs as its own process; Postfix is a private instance; the
state directory of the full-disk test is a real 64 KiB tmpfs, filled up.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import logshapes as L
from tests.integration.conftest import loop_post
from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.procs import free_port
from tests.integration.harness.requires import require_root, unavailable, wait_for
from tests.integration.harness.stormwatch import Watchers, cli, latch
from tests.integration.harness.webhook import Webhook

pytestmark = pytest.mark.integration

LOOP_RULE = """[[rule]]
name = "loop"
trip_at = 2
actions = {actions}
[rule.match]
event = "forwarding-loop"
[rule.window]
seconds = 600
"""


def _storm(n: int = 3) -> str:
    lines: list[str] = []
    for i in range(n):
        lines += L.storm_message(i / 5, i, "list-bounces@lists.example.org")
    return "\n".join(lines) + "\n"


def _loop_watcher(tmp_path: Path, state: Path, actions: str, extra: str = "") -> tuple[Path, Path]:
    """A log with one line, the loop rule with ``actions``, and a settings file for a
    watcher following it (``extra``: more TOML); returns (log, settings file)."""
    log = tmp_path / "mail.log"
    log.write_text(L.removed(0, "AAAAAA0001") + "\n")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "loop.toml").write_text(LOOP_RULE.format(actions=actions))
    config = tmp_path / "stormwatch.toml"
    config.write_text(
        f'state_dir = "{state}"\ntimezone = "UTC"\nbundled_rules = false\n'
        f"rules_dirs = [{json.dumps(str(rules))}]\n{extra}"
    )
    return log, config


def _tripped_metric(port: int) -> str | None:
    """/metrics when it says stormwatch_tripped 1; None before (or not listening yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text: str = r.read().decode()
    except OSError:
        return None
    return text if "stormwatch_tripped 1.0" in text else None


# -- 1. the state directory on a full file system ---------------------------------------


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A 64 KiB tmpfs at tmp_path/state, filled up; yields (the mount, the filler)."""
    require_root()
    mount = tmp_path / "state"
    mount.mkdir(mode=0o700)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    filler = mount / "filler"
    try:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield mount, filler
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_state_filesystem_does_not_stop_the_watcher_nor_the_trip(
    tmp_path: Path, full_tmpfs: tuple[Path, Path], webhook: Webhook, watchers: Watchers
) -> None:
    state, filler = full_tmpfs
    marker = tmp_path / "command-ran"
    log, config = _loop_watcher(
        tmp_path,
        state,
        '["command", "notify"]',
        f'[notify]\nurls = ["{webhook.apprise_url}"]\ntimeout_seconds = 5\n'
        f'[command]\nargv = ["/usr/bin/touch", {json.dumps(str(marker))}]\n',
    )
    proc = watchers.start("--config", str(config), "--source", f"file:{log}")
    wait_for(lambda: "watching" in watchers.output(), 20, "the watcher to start",
             seen=lambda: watchers.output())  # fmt: skip
    with log.open("a") as f:
        f.write(_storm())
    wait_for(marker.exists, 30, "the command, though the latch cannot be written",
             seen=lambda: watchers.output())  # fmt: skip
    (page,) = webhook.wait_for(1, 30, containing="TRIPPED")
    assert "latch.json could NOT be saved (No space left on device)" in page.body["message"]
    assert not (state / "latch.json").exists()
    assert proc.poll() is None, "the watcher must not exit for a full disk"
    assert "cannot save the first checkpoint" in watchers.output()
    filler.unlink()  # space again: the latch is written at the next tick
    wait_for(lambda: latch(state)["tripped"], 20, "latch.json to be written once there is space",
             seen=lambda: watchers.output())  # fmt: skip
    assert {a["kind"] for a in latch(state)["actions"]} == {"command", "notify"}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


# -- 2. a freeze that fails is retried ------------------------------------------------------


def test_a_failed_containment_is_retried_until_it_holds_and_that_is_paged(
    tmp_path: Path, postfix: PostfixInstance, webhook: Webhook, watchers: Watchers
) -> None:
    """postconf fails (a shim in front of the real one) until a flag file appears."""
    shims = tmp_path / "shims"
    shims.mkdir()
    flag = tmp_path / "postconf-works"
    real = postfix.programs["postconf"]
    (shims / "postconf").write_text(
        f'#!/bin/sh\n[ -e "{flag}" ] && exec "{real}" "$@"\n'
        'echo "postconf: fatal: simulated failure" >&2\nexit 1\n'
    )
    (shims / "postconf").chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin"}
    state = tmp_path / "state"
    config = tmp_path / "stormwatch.toml"
    config.write_text(
        f'state_dir = "{state}"\n[postfix]\nconfig_directory = "{postfix.config_dir}"\n'
        f'[notify]\nurls = ["{webhook.apprise_url}"]\ntimeout_seconds = 5\n'
    )
    proc = watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}", env=env)
    wait_for(lambda: "watching" in watchers.output(), 20, "the watcher to start")
    for i in range(3):
        loop_post(postfix, i)
    step = "contain-postfix"
    wait_for(lambda: any(a["kind"] == step for a in latch(state).get("actions", ())),
             60, "the first containment attempt", seen=lambda: watchers.output())  # fmt: skip
    first = next(a for a in latch(state)["actions"] if a["kind"] == step)
    assert first["ok"] is False
    assert "simulated failure" in first["summary"]
    assert postfix.param("soft_bounce") == "no"
    flag.touch()  # postconf works again

    def contained() -> list[dict[str, Any]] | None:
        tries = [a for a in latch(state)["actions"] if a["kind"] == step]
        return tries if tries[-1]["ok"] else None

    tries = wait_for(contained, 60, "a retry to contain", seen=lambda: watchers.output())
    assert tries is not None
    assert tries[-1]["attempt"] >= 2
    assert postfix.param("soft_bounce") == "yes"
    assert "held by stormwatch" in postfix.param("sender_dependent_default_transport_maps")
    webhook.wait_for(1, 30, containing="contain-postfix done")
    # the saved values are the ones from before the first attempt, so rearm puts them back
    assert set(tries[-1]["details"]["saved"].values()) == {None}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    done = cli("rearm", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    assert postfix.param("soft_bounce") == "no"


# -- 3. one watcher per state directory; rearm checks its result --------------------------


def test_a_second_watcher_is_refused_and_rearm_never_reports_success_on_a_frozen_postfix(
    tmp_path: Path, postfix: PostfixInstance, watchers: Watchers
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "stormwatch.toml"
    config.write_text(
        f'state_dir = "{state}"\n[postfix]\nconfig_directory = "{postfix.config_dir}"\n'
    )
    first = watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
    wait_for(lambda: "watching" in watchers.output(), 20, "the first watcher to start")
    second = watchers.start("--config", str(config), "--source", f"file:{postfix.log_path}")
    assert second.wait(30) == 3
    assert f"(PID {first.pid})" in watchers.output(1)
    assert first.poll() is None

    tripped = cli("trip", "--reason", "test", "--config", str(config))
    assert tripped.returncode == 1, tripped.stderr
    assert postfix.param("soft_bounce") == "yes"
    main_cf = postfix.config_dir / "main.cf"
    main_cf.write_text(main_cf.read_text() + "# edited after the freeze\n")
    postfix.backdate_main_cf()
    # a postconf whose -e and -X do nothing: the restore cannot take effect
    shims = tmp_path / "shims"
    shims.mkdir()
    real = postfix.programs["postconf"]
    (shims / "postconf").write_text(
        f'#!/bin/sh\nfor a; do case "$a" in -e|-X) exit 0;; esac; done\nexec "{real}" "$@"\n'
    )
    (shims / "postconf").chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}:{os.environ.get('PATH', '')}:/usr/sbin"}
    failed = cli("rearm", "--config", str(config), env=env)
    assert failed.returncode == 3
    assert "soft_bounce='yes'" in failed.stderr
    assert "not the saved" in failed.stderr
    assert "re-armed" not in failed.stdout
    assert latch(state)["tripped"] is True
    done = cli("rearm", "--config", str(config))  # with the real postconf
    assert done.returncode == 0, done.stderr
    assert "checked: postconf -n shows" in done.stdout
    assert "soft_bounce=(absent)" in done.stdout
    assert postfix.param("soft_bounce") == "no"
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0


# -- 6. a restart while tripped ------------------------------------------------------------


def test_a_watcher_restarted_while_tripped_reports_tripped_in_status_and_metrics(
    tmp_path: Path, watchers: Watchers
) -> None:
    state = tmp_path / "state"
    port = free_port()
    log, config = _loop_watcher(
        tmp_path, state, '["notify"]', f"[metrics]\nenabled = true\nport = {port}\n"
    )
    proc = watchers.start("--config", str(config), "--source", f"file:{log}")
    wait_for(lambda: "watching" in watchers.output(), 20, "the watcher to start")
    with log.open("a") as f:
        f.write(_storm())
    wait_for(lambda: latch(state)["tripped"], 30, "the trip")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    stopped = cli("status", "--config", str(config))
    assert stopped.stdout.startswith("TRIPPED since")
    assert "watcher: NOT RUNNING" in stopped.stdout

    watchers.start("--config", str(config), "--source", f"file:{log}")

    def status() -> dict[str, Any] | None:
        st = json.loads(cli("status", "--json", "--config", str(config)).stdout)
        return st if st.get("running") and st.get("lines", -1) >= 0 and "updated" in st else None

    st = wait_for(status, 30, "the restarted watcher's status")
    assert st is not None
    assert st["state"] == "tripped"
    assert st["tripped_rules"] == ["loop"]
    assert st["switch"]["state"] == "tripped"

    assert wait_for(lambda: _tripped_metric(port), 20, "stormwatch_tripped 1 after the restart")


# -- 11. another process on the metrics port -----------------------------------------------


def test_a_squatted_metrics_port_does_not_stop_the_watcher(
    tmp_path: Path, webhook: Webhook, watchers: Watchers
) -> None:
    """Any local user can listen on the port first: the watcher pages a warning, still
    trips, and serves /metrics once the port is free."""
    port = free_port()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    state = tmp_path / "state"
    log, config = _loop_watcher(
        tmp_path,
        state,
        '["notify"]',
        f'[notify]\nurls = ["{webhook.apprise_url}"]\ntimeout_seconds = 5\n'
        f"[metrics]\nenabled = true\nport = {port}\n",
    )
    proc = watchers.start("--config", str(config), "--source", f"file:{log}")
    (warning,) = webhook.wait_for(1, 30, containing="metrics unavailable")
    assert f"cannot listen on 127.0.0.1:{port}" in warning.body["message"]
    assert proc.poll() is None
    assert "watching" in watchers.output()
    with log.open("a") as f:
        f.write(_storm())
    webhook.wait_for(1, 30, containing="TRIPPED")
    squatter.close()

    assert wait_for(lambda: _tripped_metric(port), 30, "/metrics once the port is free")
    assert "after 1 failed attempt(s)" in watchers.output()
    assert len(webhook.wait_for(1, 1, containing="metrics unavailable")) == 1  # paged once


# -- 10. forged lines: which sources a local user can write to -----------------------------


def test_check_config_warns_about_a_syslog_file_not_about_postfixs_own_log(
    tmp_path: Path, postfix: PostfixInstance
) -> None:
    config = tmp_path / "stormwatch.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[postfix]\nconfig_directory = "{postfix.config_dir}"\n'
    )
    syslog = tmp_path / "mail.log"
    for spec, warned in ((f"file:{syslog}", True), (f"file:{postfix.log_path}", False),
                         ("journal", False)):  # fmt: skip
        done = cli("check-config", "--config", str(config), "--source", spec)
        assert done.returncode == 0, done.stderr
        assert f"sources: {spec}\n" in done.stdout
        warning = "any local user can add Postfix-looking lines" in done.stdout
        assert warning is warned, (spec, done.stdout)
    assert (
        f"WARNING: {syslog} is written by the system logger"
        in cli(
            "check-config", "--quiet", "--config", str(config), "--source", f"file:{syslog}"
        ).stdout
    )
