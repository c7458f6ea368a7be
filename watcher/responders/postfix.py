"""Stopping the outflow with Postfix's own tools, and undoing it.

* freeze: save ``soft_bounce`` and ``defer_transports`` as main.cf has them
  (absent stays absent, empty stays empty) and main.cf itself, then
  ``postconf -e soft_bounce=yes defer_transports=<outbound transports>`` and
  make the master re-read main.cf. ``soft_bounce`` stops new bounces being
  made, ``defer_transports`` stops delivery on those transports; nothing is
  lost.
* hold: ``postqueue -j``, pick the storm's messages (null sender, which
  postqueue shows as ``MAILER-DAEMON``, and originals soft-bounced by a
  forwarding loop) and ``postsuper -h -`` them, IDs on stdin. Repeated while
  the switch is tripped: mail still arriving must not sit deferred, ready to
  become a second storm at re-arm.
* restore (``rearm``): put main.cf back and reload; optionally release the
  held mail (``postsuper -H``) and flush.

The fast reload: Postfix treats a main.cf modified within the last second as
still being written and re-reads it every 300 ms until it is a second old, so
right after ``postconf -e`` a reload only takes effect 1.5-2.4 s later. main.cf
is therefore backdated a few seconds (``postconf -e`` replaced it whole a
moment ago), then the master gets SIGHUP (its PID from
``<queue_directory>/pid/master.pid``): effective within milliseconds. If that
fails, ``postfix reload``.

Every command: an argv list, ``-c <config_directory>``, a timeout, ``--``
before operands, never a shell. Queue IDs are checked against the queue-ID
alphabet before they reach ``postsuper``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.core import plan
from watcher.core.decide import Action
from watcher.core.errors import StormwatchError
from watcher.core.incident import Incident
from watcher.core.parse import QID_RE
from watcher.core.settings import Settings
from watcher.responders.base import Outcome, Runner
from watcher.responders.master import NotRunning, check_master

log = logging.getLogger(__name__)

FREEZE_PARAMS = ("soft_bounce", "defer_transports")
NULL_SENDERS = frozenset({"MAILER-DAEMON", ""})
LOOP_REASON = "mail forwarding loop"
BACKDATE_SECONDS = 5.0


class PostfixError(StormwatchError):
    """A Postfix command failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Frozen:
    """What a freeze changed: enough for ``restore`` to undo it exactly."""

    saved: dict[str, str | None]  # parameter -> value explicitly in main.cf, None = absent
    applied: dict[str, str]
    main_cf_before: str | None  # main.cf's text before the freeze
    main_cf_after_sha256: str | None  # main.cf's digest right after it


class PostfixControl:
    """Postfix's commands for one instance (``-c config_directory``)."""

    def __init__(
        self,
        config_directory: str,
        *,
        run: Runner = subprocess.run,
        kill: Callable[[int, int], None] = os.kill,
        timeout: float = 30.0,
        proc: Path = Path("/proc"),
    ) -> None:
        self.config_directory = config_directory
        self._run = run
        self._kill = kill
        self._proc = proc
        self.timeout = timeout
        self._queue_directory: str | None = None

    # -- commands --------------------------------------------------------------

    def command(self, argv: Sequence[str], *, stdin: str | None = None) -> str:
        """Run ``argv``; its stdout, or PostfixError with the reason."""
        try:
            done = self._run(
                list(argv),
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise PostfixError(f"{argv[0]}: not installed ({exc.strerror})") from exc
        except subprocess.TimeoutExpired as exc:
            raise PostfixError(f"{' '.join(argv[:4])}: no answer in {self.timeout:g} s") from exc
        except OSError as exc:
            raise PostfixError(f"{argv[0]}: {exc}") from exc
        if done.returncode != 0:
            err = (done.stderr or done.stdout or "").strip().splitlines()
            raise PostfixError(
                f"{' '.join(argv[:4])}: exit {done.returncode}: {err[-1] if err else 'no message'}"
            )
        return str(done.stdout)

    def explicit(self, names: Iterable[str]) -> dict[str, str | None]:
        """The values main.cf sets explicitly (``postconf -n``); None where it has none."""
        names = list(names)
        out = self.command(plan.postconf_explicit(self.config_directory, names))
        values: dict[str, str | None] = dict.fromkeys(names)
        for line in out.splitlines():
            name, sep, value = line.partition(" = ")
            if not sep and line.endswith(" ="):
                name, value = line[:-2], ""
            if name in values:
                values[name] = value
        return values

    def param(self, name: str) -> str:
        return self.command(plan.postconf_get(self.config_directory, name)).strip()

    def expanded(self, name: str) -> str:
        """The value with its ``$name`` references expanded."""
        return self.command(plan.postconf_expanded(self.config_directory, name)).strip()

    def set(self, values: Mapping[str, str]) -> None:
        self.command(plan.postconf_set(self.config_directory, dict(values)))
        self._backdate()

    def remove(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            self.command(plan.postconf_remove(self.config_directory, names))
            self._backdate()

    def _backdate(self) -> None:
        """Postfix re-reads a main.cf changed in the last second until it is older
        (``load_file``: up to ~2 s in every program that reads it, the master's reload
        and the next ``postconf`` included). ``postconf -e`` has finished writing it, so
        its mtime is set back: the change takes effect at once."""
        try:
            then = self.main_cf.stat().st_mtime - BACKDATE_SECONDS
            os.utime(self.main_cf, (then, then))
        except OSError as exc:
            log.warning("cannot backdate %s (%s): the reload may take ~2 s", self.main_cf, exc)

    @property
    def main_cf(self) -> Path:
        return Path(self.config_directory) / "main.cf"

    def reload(self) -> str:
        """Make the master re-read main.cf; returns how ("SIGHUP to master PID n"), or
        that Postfix is not running (main.cf is written: in force at its next start)."""
        try:
            pid = self.master_pid()
            self._kill(pid, signal.SIGHUP)
            return f"SIGHUP to the master (PID {pid})"
        except NotRunning as exc:
            log.warning("Postfix is not running (%s): main.cf takes effect at its start", exc)
            return "Postfix is not running: main.cf is written, in force at its next start"
        except (OSError, PostfixError, ValueError) as exc:
            log.warning("fast reload failed (%s); running postfix reload", exc)
        self.command(plan.postfix_reload(self.config_directory))
        return "postfix reload"

    def warm(self) -> str:
        """Ask now what a reload needs (the queue directory), not on the storm's clock."""
        if self._queue_directory is None:
            self._queue_directory = self.param("queue_directory")
        return self._queue_directory

    def master_pid(self) -> int:
        queue_directory = self.warm()  # asked once: a freeze should not wait for it
        pidfile = Path(queue_directory) / "pid" / "master.pid"
        try:
            text = pidfile.read_text().strip()
        except FileNotFoundError as exc:
            raise NotRunning(f"{pidfile} does not exist") from exc
        if not text.isdigit():
            raise ValueError(f"{pidfile}: not a PID: {text[:20]!r}")
        check_master(int(text), pidfile, self._proc)
        return int(text)

    def queue(self) -> list[dict[str, Any]]:
        """``postqueue -j``: one dict per queued message."""
        out = self.command(plan.postqueue_list(self.config_directory))
        entries = []
        for line in out.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("postqueue -j: skipped a line that is not JSON: %.80s", line)
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def postsuper(self, flag: str, ids: Sequence[str]) -> int:
        """``postsuper -h -`` / ``-H -`` with validated IDs on stdin; how many were given."""
        good = [q for q in ids if QID_RE.fullmatch(q)]
        if len(good) != len(ids):
            log.warning("refused %d malformed queue ID(s)", len(ids) - len(good))
        if good:
            self.command(
                plan.postsuper_stdin(self.config_directory, flag), stdin="\n".join(good) + "\n"
            )
        return len(good)

    def flush(self) -> None:
        self.command(plan.postqueue_flush(self.config_directory))


def is_looping(entry: Mapping[str, Any]) -> bool:
    """A ``postqueue -j`` entry deferred by a forwarding loop (a looping copy)."""
    return any(
        LOOP_REASON in str(r.get("delay_reason", ""))
        for r in entry.get("recipients") or ()
        if isinstance(r, dict)
    )


def storm_messages(
    entries: Iterable[Mapping[str, Any]], recipients: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """``(to hold, held already)``: null-sender mail, forwarding-loop soft bounces and
    mail for the looping ``recipients`` not yet held; and mail for those recipients that
    smtpd already put on hold (the scoped step's HOLD), which the incident must count."""
    to_hold: list[str] = []
    already: list[str] = []
    for e in entries:
        qid = e.get("queue_id")
        if not isinstance(qid, str):
            continue
        rcpts = [r for r in e.get("recipients") or () if isinstance(r, dict)]
        ours = any(str(r.get("address", "")).lower() in recipients for r in rcpts)
        if e.get("queue_name") == "hold":
            if ours:
                already.append(qid)
            continue
        if e.get("sender") in NULL_SENDERS or is_looping(e) or ours:
            to_hold.append(qid)
    return to_hold, already


def sha256(text: str | None) -> str | None:
    """main.cf's digest (None for no main.cf), to tell whether anyone edited it since."""
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


class SavingStep:
    """A step that changes main.cf: :meth:`prepare` saves what main.cf sets for
    ``params`` and its text (in the latch) before anything changes, so that a retry or
    a restart never saves a changed state; :meth:`respond_prepared` acts."""

    kind: str
    control: PostfixControl
    params: tuple[str, ...]
    not_done: str  # the outcome's summary when main.cf cannot even be read

    def prepare(self, action: Action) -> dict[str, Any] | Outcome:
        c = self.control
        try:
            before = c.main_cf.read_text() if c.main_cf.exists() else None
            saved = c.explicit(self.params)
        except (PostfixError, OSError) as exc:
            return Outcome(self.kind, False, f"{self.not_done}: {exc}", {"error": str(exc)})
        return {"saved": saved, "main_cf_before": before}

    def respond(self, action: Action, incident: Incident) -> Outcome:
        prepared = self.prepare(action)
        if isinstance(prepared, Outcome):
            return prepared
        return self.respond_prepared(action, incident, prepared)

    def respond_prepared(
        self, action: Action, incident: Incident, prepared: Mapping[str, Any]
    ) -> Outcome:
        raise NotImplementedError


class FreezeResponder(SavingStep):
    """``freeze-postfix``: soft_bounce=yes, defer the outbound transports, reload."""

    kind = "freeze-postfix"
    params = FREEZE_PARAMS
    not_done = "Postfix NOT frozen"

    def __init__(self, settings: Settings, control: PostfixControl | None = None) -> None:
        self.settings = settings
        self.control = control or PostfixControl(settings.postfix.config_directory)

    def respond_prepared(
        self, action: Action, incident: Incident, prepared: Mapping[str, Any]
    ) -> Outcome:
        c = self.control
        transports = plan.freeze_transports(action, self.settings)
        frozen_before = frozen_from(prepared)
        saved, before = frozen_before.saved, frozen_before.main_cf_before
        try:
            deferred = [t for t in (saved["defer_transports"] or "").replace(",", " ").split() if t]
            merged = deferred + [t for t in transports if t not in deferred]
            applied = {**plan.freeze_values(action, self.settings)}
            applied["defer_transports"] = ",".join(merged)
            c.set(applied)
            after = c.main_cf.read_text() if c.main_cf.exists() else None
        except (PostfixError, OSError) as exc:
            return Outcome(self.kind, False, f"Postfix NOT frozen: {exc}", {"error": str(exc)})
        frozen = Frozen(saved, applied, before, sha256(after))
        details: dict[str, object] = {
            "config_directory": c.config_directory,
            "saved": saved,
            "applied": applied,
            "main_cf_before": before,
            "main_cf_after_sha256": frozen.main_cf_after_sha256,
        }
        try:
            how = c.reload()
        except PostfixError as exc:
            details["error"] = str(exc)
            return Outcome(
                self.kind,
                False,
                f"main.cf changed (soft_bounce=yes, defer_transports={applied['defer_transports']})"
                f" but the reload failed: {exc}",
                details,
            )
        details["reload"] = how
        return Outcome(
            self.kind,
            True,
            f"outflow stopped: soft_bounce=yes, defer_transports={applied['defer_transports']} "
            f"({how})",
            details,
        )


def frozen_from(details: Mapping[str, Any]) -> Frozen:
    """The :class:`Frozen` a freeze outcome's details describe (as saved in the state)."""
    saved_raw = details.get("saved") or {}
    saved = {k: (v if isinstance(v, str) else None) for k, v in dict(saved_raw).items()}
    applied = {k: str(v) for k, v in dict(details.get("applied") or {}).items()}
    before = details.get("main_cf_before")
    after = details.get("main_cf_after_sha256")
    return Frozen(
        saved,
        applied,
        before if isinstance(before, str) else None,
        after if isinstance(after, str) else None,
    )


def combined(changes: Sequence[Frozen]) -> Frozen:
    """Several changes of one incident (the ladder's steps, retries) as one: each
    parameter's value from before the first change that touched it, main.cf's text from
    before the first, and its digest after the last."""
    saved: dict[str, str | None] = {}
    applied: dict[str, str] = {}
    for f in changes:
        for name, value in f.saved.items():
            saved.setdefault(name, value)
        applied.update(f.applied)
    return Frozen(saved, applied, changes[0].main_cf_before, changes[-1].main_cf_after_sha256)


def restore(control: PostfixControl, frozen: Frozen) -> list[str]:
    """Undo a freeze exactly; returns what was done, step by step.

    If main.cf is as the freeze left it, its earlier text is written back
    byte for byte; if someone edited it since, only the saved parameters are
    put back (``postconf -e``/``-X``), keeping their edit.
    """
    steps: list[str] = []
    path = control.main_cf
    current = path.read_text() if path.exists() else None
    if (
        frozen.main_cf_before is not None
        and current is not None
        and sha256(current) == frozen.main_cf_after_sha256
    ):
        tmp = path.with_name(f".{path.name}.stormwatch")
        tmp.write_text(frozen.main_cf_before)
        st = path.stat()
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
        steps.append(f"{path}: restored to its text before the freeze")
    else:
        present = {k: v for k, v in frozen.saved.items() if v is not None}
        absent = [k for k, v in frozen.saved.items() if v is None]
        if present:
            control.set(present)
        control.remove(absent)
        steps.append(
            f"{path} was edited since the freeze: put back "
            + ", ".join(
                f"{k}={v!r}" if v is not None else f"{k} (removed)" for k, v in frozen.saved.items()
            )
        )
    steps.append(control.reload())
    return steps


class HoldResponder:
    """``hold-bounces``: put the storm's queued messages on hold, and keep doing it."""

    kind = "hold-bounces"

    def __init__(self, settings: Settings, control: PostfixControl | None = None) -> None:
        self.settings = settings
        self.control = control or PostfixControl(settings.postfix.config_directory)
        self.held: list[str] = []

    def sweep(self, recipients: Collection[str] = ()) -> list[str]:
        """Hold what is queued now; the IDs newly held (by us, or by smtpd for the looping
        ``recipients``). Raises PostfixError."""
        wanted = {r.lower() for r in recipients}
        to_hold, already = storm_messages(self.control.queue(), wanted)
        ids = [q for q in to_hold if q not in self.held]
        if ids:
            self.control.postsuper("-h", ids)
        ids += [q for q in already if q not in self.held and q not in ids]
        self.held.extend(q for q in ids if QID_RE.fullmatch(q))
        return ids

    def respond(self, action: Action, incident: Incident) -> Outcome:
        try:
            ids = self.sweep(action.addresses)
        except PostfixError as exc:
            return Outcome(
                self.kind, False, f"could not hold the bounces: {exc}", {"error": str(exc)}
            )
        return Outcome(
            self.kind,
            True,
            f"{len(ids)} storm message(s) put on hold (held mail never expires; nothing deleted)",
            {"held": ids},
        )
