"""When it matters, it acts: the kill switch under faults, restarts and corrupt state.

Fakes for the responders and the file system's failures; the real programs are
in tests/integration/test_failsafe_real.py.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.incidents import make_incident
from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.pipeline import Where
from watcher.core.settings import Settings
from watcher.responders import latchstore
from watcher.responders.base import Outcome
from watcher.responders.killswitch import KillSwitch
from watcher.responders.latchstore import LatchStore
from watcher.responders.postfix import PostfixControl
from watcher.responders.rearm import RearmError, rearm
from watcher.state.runlock import AlreadyRunning, RunLock, holder

KINDS = ("notify", "stop-fetchmail", "freeze-postfix", "hold-bounces", "command")
INCIDENT = make_incident("20231114T221320Z-backscatter", "backscatter", "", 10, 10, 60, "", "", "l")
WHERE = Where("mail.log", 7, "line", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Fake:
    """A responder that fails ``fail`` times, then works; records every call."""

    def __init__(self, kind: str, calls: list[str], fail: int = 0) -> None:
        self.kind = kind
        self.calls = calls
        self.fail = fail

    def respond(self, action: Action, incident: Incident) -> Outcome:
        self.calls.append(self.kind)
        if self.fail > 0:
            self.fail -= 1
            return Outcome(self.kind, False, f"{self.kind} failed")
        return Outcome(self.kind, True, f"{self.kind} done ({incident.id})")


class Freezer(Fake):
    """A responder that saves what it will undo before it acts (as the freeze does)."""

    def __init__(self, calls: list[str], state: dict[str, str]) -> None:
        super().__init__("freeze-postfix", calls)
        self.state = state
        self.prepared: list[dict[str, Any]] = []

    def prepare(self, action: Action) -> dict[str, Any]:
        return {"saved": dict(self.state)}

    def respond_prepared(
        self, action: Action, incident: Incident, prepared: dict[str, Any]
    ) -> Outcome:
        self.calls.append(self.kind)
        self.prepared.append(prepared)
        self.state["soft_bounce"] = "yes"
        return Outcome(self.kind, True, "frozen", {"saved": prepared["saved"]})


def _actions(kinds: tuple[str, ...] = KINDS) -> list[Action]:
    return [Action(k, "trip", "backscatter", 0, 10, 10, 60.0) for k in kinds]  # type: ignore[arg-type]


def _switch(
    tmp_path: Path, calls: list[str], *, fail: dict[str, int] | None = None, **kw: Any
) -> tuple[KillSwitch, list[tuple[str, str, str]], Clock]:
    clock = Clock()
    pages: list[tuple[str, str, str]] = []
    store = LatchStore(tmp_path)
    responders = {k: Fake(k, calls, (fail or {}).get(k, 0)) for k in KINDS}
    responders.update(kw.pop("responders", {}))
    switch = KillSwitch(
        Settings(state_dir=tmp_path),
        store,
        responders,
        wall=clock,
        page=lambda title, body, level: pages.append((title, body, level)),
        **kw,
    )
    return switch, pages, clock


# -- 1. a latch that cannot be written ---------------------------------------------------


def test_a_trip_whose_latch_cannot_be_saved_still_acts_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = {"on": True}
    real_write = latchstore.atomic_write_json  # type: ignore[attr-defined]

    def write(path: Any, obj: object) -> None:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, obj)

    monkeypatch.setattr(latchstore, "atomic_write_json", write)
    calls: list[str] = []
    switch, _, _ = _switch(tmp_path, calls)
    outcomes: list[list[Outcome]] = []
    switch.responders["notify"] = Fake("notify", calls)
    original = switch.responders["notify"].respond

    def notify(action: Action, incident: Incident) -> Outcome:
        outcomes.append(switch.outcomes())
        return original(action, incident)

    switch.responders["notify"].respond = notify  # type: ignore[method-assign]
    switch.trip(_actions(), INCIDENT, WHERE)
    assert calls == ["freeze-postfix", "hold-bounces", "stop-fetchmail", "command", "notify"]
    assert not (tmp_path / "latch.json").exists()
    assert switch.store.read().tripped  # held in memory
    saved = [o for o in outcomes[0] if o.kind == "latch"]
    assert saved, "the page must say the latch could not be saved"
    assert "could NOT be saved (No space left on device)" in saved[0].summary
    full["on"] = False  # space again
    switch.tick()
    on_disk = json.loads((tmp_path / "latch.json").read_text())
    assert on_disk["tripped"] is True
    assert [a["kind"] for a in on_disk["actions"]] == calls
    assert not [o for o in switch.outcomes() if o.kind == "latch"]


# -- 2. failed actions are retried --------------------------------------------------------


def test_a_failed_freeze_is_retried_with_backoff_and_its_success_paged(tmp_path: Path) -> None:
    calls: list[str] = []
    switch, pages, clock = _switch(tmp_path, calls, fail={"freeze-postfix": 2})
    switch.trip(_actions(), INCIDENT, WHERE)
    assert calls.count("freeze-postfix") == 1
    switch.tick()  # not due yet: the first retry waits 5 s
    assert calls.count("freeze-postfix") == 1
    clock.now += 5
    switch.tick()
    assert calls.count("freeze-postfix") == 2  # failed again: next in 5 s, then 10 s...
    clock.now += 5
    switch.tick()
    assert calls.count("freeze-postfix") == 3
    latch = switch.store.read()
    attempts = [(a.attempt, a.ok) for a in latch.actions if a.kind == "freeze-postfix"]
    assert attempts == [(1, False), (2, False), (3, True)]
    assert latch.failed() == []
    recovered = [p for p in pages if "freeze-postfix done" in p[0]]
    assert len(recovered) == 1
    assert "attempt 3" in recovered[0][0]
    clock.now += 600
    switch.tick()
    assert calls.count("freeze-postfix") == 3  # done: not repeated
    assert calls.count("command") == 1  # not a retryable action


def test_a_manual_trip_on_a_latch_with_failed_actions_runs_them_again(tmp_path: Path) -> None:
    calls: list[str] = []
    switch, _, _ = _switch(tmp_path, calls, fail={"freeze-postfix": 1, "hold-bounces": 1})
    switch.trip(_actions(), INCIDENT, WHERE)
    later, _, _ = _switch(tmp_path, calls)  # `stormwatch trip` after the fix, a new process
    calls.clear()
    later.trip(_actions(), INCIDENT, None)
    assert calls == ["freeze-postfix", "hold-bounces"]  # at once, no backoff
    assert later.store.read().failed() == []


# -- 4. a crash between the latch and the page ------------------------------------------


def test_actions_cut_short_by_a_crash_are_finished_after_the_restart(tmp_path: Path) -> None:
    calls: list[str] = []
    switch, _, _ = _switch(tmp_path, calls)
    with switch.store.locked() as latch:  # what kill -9 after the freeze leaves behind
        latch.start(INCIDENT, "t", 1.0)
        latch.plan(_actions())
    switch.runner.run_one(_actions(("freeze-postfix",))[0], INCIDENT, attempt=1)
    calls.clear()
    restarted, _, _ = _switch(tmp_path, calls)
    restarted.tick()
    assert calls == ["hold-bounces", "stop-fetchmail", "command", "notify"]
    latch = restarted.store.read()
    assert latch.unfinished() == []
    notify = latch.latest("notify")
    assert notify is not None
    assert INCIDENT.id in notify.summary  # the page carries the incident ID
    restarted.tick()
    assert calls.count("notify") == 1


def test_a_freeze_prepared_before_a_crash_is_finished_with_what_it_saved(tmp_path: Path) -> None:
    """The saved values come from before the freeze, never from a half-frozen Postfix."""
    calls: list[str] = []
    postfix = {"soft_bounce": "no"}
    freezer = Freezer(calls, postfix)
    switch, _, _ = _switch(tmp_path, calls, responders={"freeze-postfix": freezer})
    with switch.store.locked() as latch:
        latch.start(INCIDENT, "t", 1.0)
        latch.plan(_actions(("freeze-postfix",)))
        latch.started["freeze-postfix"] = freezer.prepare(latch.planned[0])
    postfix["soft_bounce"] = "yes"  # it had applied the change when it was killed
    restarted, _, _ = _switch(tmp_path, calls, responders={"freeze-postfix": freezer})
    restarted.tick()
    assert freezer.prepared == [{"saved": {"soft_bounce": "no"}}]
    record = restarted.store.read().latest("freeze-postfix")
    assert record is not None
    assert record.details["saved"] == {"soft_bounce": "no"}


# -- 7. a corrupt latch -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", ['{"tripped": true}', '{"sche', "", "\x00\x01binary", '{"tripped": "yes"}']
)
def test_a_corrupt_latch_is_tripped_state_unknown_pages_and_still_acts(
    tmp_path: Path, content: str
) -> None:
    (tmp_path / "latch.json").write_text(content)
    calls: list[str] = []
    switch, pages, _ = _switch(tmp_path, calls)
    latch = switch.store.read()
    assert latch.tripped
    assert latch.unknown
    switch.tick()
    assert any("state unknown" in p[0] for p in pages)
    switch.tick()
    assert sum("state unknown" in p[0] for p in pages) == 1  # once
    switch.trip(_actions(), INCIDENT, WHERE)  # a new storm: it acts
    assert calls == ["freeze-postfix", "hold-bounces", "stop-fetchmail", "command", "notify"]
    (aside,) = tmp_path.glob("latch.json.bad-*")
    assert aside.read_text() == content
    fresh = switch.store.read()
    assert not fresh.unknown
    assert fresh.incident is not None
    assert fresh.incident.id == INCIDENT.id
    notes = [o for o in switch.outcomes() if o.kind == "latch"]
    assert notes
    assert "could not be used" in notes[0].summary


def test_rearm_refuses_a_corrupt_latch_until_forced(tmp_path: Path) -> None:
    (tmp_path / "latch.json").write_text('{"tripped": true}')
    control = PostfixControl(str(tmp_path))
    with pytest.raises(RearmError, match=r'(?s)incident.*holds:\n\{"tripped": true\}.*--force'):
        rearm(LatchStore(tmp_path), control, release=False)
    done = rearm(LatchStore(tmp_path), control, release=False, force=True)
    assert done.was_tripped
    assert any("NOT checked" in s for s in done.steps)
    assert not LatchStore(tmp_path).read().tripped
    assert len(list(tmp_path.glob("latch.json.bad-*"))) == 1


def test_a_latch_another_user_owns_is_never_acted_on(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown the file to another user")
    path = tmp_path / "latch.json"
    path.write_text(json.dumps({"schema": 1, "tripped": False}))
    os.chown(path, 65534, 65534)
    latch = LatchStore(tmp_path).read()
    assert latch.tripped
    assert "owned by uid 65534" in latch.unknown


# -- 3. one watcher per state directory, and a rearm that checks -------------------------


def test_a_second_watcher_is_refused_naming_the_first(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    try:
        assert holder(tmp_path) == os.getpid()
        with pytest.raises(AlreadyRunning, match=rf"PID {os.getpid()}"):
            RunLock(tmp_path).acquire()
    finally:
        first.release()
    assert holder(tmp_path) is None
    again = RunLock(tmp_path)
    again.acquire()
    again.release()


def test_rearm_never_reports_success_on_a_frozen_postfix(tmp_path: Path) -> None:
    calls: list[str] = []
    switch, _, _ = _switch(tmp_path, calls)
    with switch.store.locked() as latch:
        latch.start(INCIDENT, "t", 1.0)
        latch.plan(_actions(("freeze-postfix",)))
    frozen_details = {
        "saved": {"soft_bounce": None, "defer_transports": None},
        "applied": {"soft_bounce": "yes", "defer_transports": "smtp"},
        "main_cf_before": "x = 1\n",
        "main_cf_after_sha256": "not this file",
    }

    class StillFrozen(PostfixControl):
        """postconf -e/-X that do nothing: Postfix stays frozen."""

        def command(self, argv: Any, *, stdin: str | None = None) -> str:
            if "-n" in argv:
                return "soft_bounce = yes\ndefer_transports = smtp\n"
            return ""

        def queue(self) -> list[dict[str, Any]]:
            return []

        def reload(self) -> str:
            return "reloaded"

    class Recorded(Fake):
        def respond(self, action: Action, incident: Incident) -> Outcome:
            return Outcome(self.kind, True, "frozen", frozen_details)

    switch.responders["freeze-postfix"] = Recorded("freeze-postfix", calls)
    switch.runner.run_unfinished()
    (tmp_path / "main.cf").write_text("edited since\n")
    with pytest.raises(RearmError, match=r"postconf -n shows .*soft_bounce='yes'.*, not the saved"):
        rearm(LatchStore(tmp_path), StillFrozen(str(tmp_path)), release=False)
    assert LatchStore(tmp_path).read().tripped  # stays tripped: run it again


def test_rearm_waits_for_a_process_carrying_out_actions(tmp_path: Path) -> None:
    store = LatchStore(tmp_path)
    with store.acting(0) as mine:
        assert mine
        with pytest.raises(RearmError, match="carrying out the trip's actions"):
            rearm(LatchStore(tmp_path), PostfixControl(str(tmp_path)), release=False, wait=0.2)


# -- 13. files other users can write -------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the checks apply to root")


RULE = """[[rule]]
name = "mine"
trip_at = 5
[rule.match]
event = "forwarding-loop"
[rule.window]
seconds = 60
"""


@needs_root
@pytest.mark.parametrize("how", ["file-owned-by-nobody", "file-0666", "dir-0777"])
def test_as_root_a_rules_file_others_can_change_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    from watcher.cli import main

    rules = tmp_path / "rules"
    rules.mkdir(mode=0o755)
    path = rules / "mine.toml"
    path.write_text(RULE)
    if how == "file-owned-by-nobody":
        os.chown(path, 65534, 65534)
    elif how == "file-0666":
        path.chmod(0o666)
    else:
        rules.chmod(0o777)
    assert main(["check-config", "--rules", str(rules), "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing the rules" in err
    assert str(path if how != "dir-0777" else rules) in err
    assert ("uid 65534" if how == "file-owned-by-nobody" else "writable by others") in err


@needs_root
def test_as_root_a_world_writable_settings_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from watcher.cli import main

    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text('[command]\nargv = ["/bin/sh", "-c", "echo owned"]\n')
    cfg.chmod(0o666)
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: refusing the settings file" in err
    assert "-rw-rw-rw- 0666" in err


def test_a_state_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    from watcher.state.trust import UntrustedState, check_state_dir

    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    with pytest.raises(UntrustedState, match=r"state.*owned by uid \d+ and writable by it alone"):
        check_state_dir(state)
    state.chmod(0o700)
    check_state_dir(state)


# -- 1 (the run loop). a checkpoint that cannot be saved --------------------------------------


def test_a_checkpoint_that_cannot_be_saved_is_counted_and_retried_not_fatal(
    tmp_path: Path,
) -> None:
    import threading

    from tests import logshapes as L
    from watcher.core.parse import Parser
    from watcher.core.pipeline import Pipeline
    from watcher.runtime.daemon import Watcher
    from watcher.runtime.rulefiles import load_rules
    from watcher.sources.base import Item, TextLine

    class FullDisk:
        name = "file:/x"

        def __init__(self) -> None:
            self.batches: list[list[Item]] = [
                [TextLine(L.removed(i, f"ABCDEF{i:04d}"), i)] for i in range(5)
            ]
            self.commits: list[object] = []
            self.refused = 0
            self.done = threading.Event()

        def open(self) -> None: ...
        def close(self) -> None: ...
        def counters(self) -> dict[str, int]:
            return {}

        def poll(self, timeout: float) -> list[Item]:
            return self.batches.pop(0) if self.batches else []

        def commit(self, position: object) -> None:
            if self.refused < 3:  # full for the first three tries, then space again
                self.refused += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            self.commits.append(position)
            if position == 4:
                self.done.set()

    src = FullDisk()
    p = Pipeline.build([r.rule for r in load_rules()], Parser(reference=L.REFERENCE))
    watcher = Watcher(p, [src], state_dir=tmp_path, poll_timeout=0.02, commit_every=0.0)
    stop = threading.Event()
    t = threading.Thread(target=watcher.run, args=(stop,))
    t.start()
    assert src.done.wait(10)
    stop.set()
    t.join(10)
    assert not t.is_alive()
    assert watcher.status()["sources"]["file:/x"]["checkpoint_failures"] == 3
    assert src.commits[-1] == 4  # saved, once there was space
