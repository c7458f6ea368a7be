"""Carrying out a trip's actions, durably: prepared, started, finished, retried.

Each planned action (:attr:`watcher.core.latch.Latch.planned`) goes through:

1. *prepare* (responders that change state, such as the freeze): what is needed
   to undo it (the values main.cf sets now, main.cf's text) is saved in the
   latch (``started``) **before** anything changes, so a crash or a retry never
   takes a frozen Postfix for the original one;
2. *respond*: the responder acts and returns an outcome;
3. the outcome is saved in the latch (``actions``).

After a crash (kill -9 between 1 and 3) the action has no outcome: it is
carried out again at the restart (:meth:`ActionRunner.run_unfinished`), with
what was prepared. The page is sent at least once, and carries the incident
ID, so a duplicate is recognisable.

An action whose outcome is a failure and that is safe to repeat
(:data:`RETRYABLE`) is tried again while tripped, with backoff
(:meth:`ActionRunner.retry_failed`); every attempt is recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.latch import ActionRecord, Latch
from watcher.core.times import iso, wall_us
from watcher.responders.base import Outcome, Responder
from watcher.responders.latchstore import LatchStore

log = logging.getLogger(__name__)

# Safe to repeat: a freeze merges its values, a hold skips what is held, a second SIGINT
# to a fetchmail still running is what an admin would send. The command may not be
# idempotent and the page has its own retries: those run once.
RETRYABLE = frozenset(
    {"contain-offender", "contain-postfix", "freeze-postfix", "hold-bounces", "stop-fetchmail"}
)
HOLDS = frozenset({"hold-bounces", "contain-offender"})  # their outcome's "held": on hold now
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0


class Preparing(Protocol):
    """A responder that saves what it needs to undo its change before it acts."""

    kind: str

    def prepare(self, action: Action) -> dict[str, Any] | Outcome:
        """What undoing it needs, read before anything changes; an Outcome if it
        cannot even be read (nothing is saved then, and a retry prepares again)."""
        ...

    def respond_prepared(
        self, action: Action, incident: Incident, prepared: Mapping[str, Any]
    ) -> Outcome: ...


class Recorder(Protocol):
    def record_outcome(self, kind: str, ok: bool) -> None: ...


def wall_iso(t: float) -> str:
    """A wall-clock time as the latch records it: ISO 8601 UTC, milliseconds."""
    return iso(wall_us(t), timespec="milliseconds")


class ActionRunner:
    """Runs actions for the kill switch and records each outcome in the latch."""

    def __init__(
        self,
        store: LatchStore,
        responders: Mapping[str, Responder],
        *,
        wall: Callable[[], float] = time.time,
        keepalive: Callable[[], object] = lambda: None,
        metrics: Recorder | None = None,
        on_recovered: Callable[[Incident, ActionRecord], None] | None = None,
        wait: float = 0.0,
    ) -> None:
        self.store = store
        self.responders = responders
        self._wall = wall
        self._keepalive = keepalive
        self.metrics = metrics
        self._on_recovered = on_recovered
        self._retry_at: dict[str, float] = {}
        self.wait = wait  # for the right to act, while another process acts (trip, rearm)

    def run_unfinished(self, before: Callable[[str], Incident | None] | None = None) -> int:
        """Carry out every planned action that has no outcome yet, in order; how many ran.

        ``before(kind)`` may give a fresher incident to act on (the page names the report
        written just before it). Skipped when another process is carrying out actions.
        """
        ran = 0
        with self.store.acting(self.wait) as mine:
            if not mine:
                return 0
            for action in self.store.read().unfinished():
                latch = self.store.read()
                if latch.incident is None or action.kind in latch.done():
                    continue
                incident = (before(action.kind) if before else None) or latch.incident
                self.run_one(action, incident, attempt=1)
                ran += 1
        return ran

    def retry_failed(self, *, now: float | None = None, force: Collection[str] = ()) -> int:
        """Try again the failed actions that are safe to repeat, when due (those in
        ``force``: now); how many were tried."""
        now = self._wall() if now is None else now
        tried = 0
        with self.store.acting(self.wait) as mine:
            if not mine:
                return 0
            latch = self.store.read()
            for kind in latch.failed():
                if kind not in RETRYABLE or latch.incident is None:
                    continue
                if kind not in force and now < self._retry_at.get(kind, 0.0):
                    continue
                action = next(a for a in latch.planned if a.kind == kind)
                attempts = sum(1 for a in latch.actions if a.kind == kind)
                record = self.run_one(action, latch.incident, attempt=attempts + 1)
                tried += 1
                if record.ok:
                    self._retry_at.pop(kind, None)
                    log.warning("%s succeeded on attempt %d", kind, record.attempt)
                    if self._on_recovered is not None:
                        self._on_recovered(latch.incident, record)
                else:
                    wait = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
                    self._retry_at[kind] = self._wall() + wait
                    log.error("%s failed again (attempt %d); next try in %g s",
                              kind, record.attempt, wait)  # fmt: skip
        return tried

    def run_one(self, action: Action, incident: Incident, *, attempt: int) -> ActionRecord:
        """Prepare (saved first), act, save the outcome; the record saved."""
        kind = action.kind
        self._keepalive()
        responder = self.responders.get(kind)
        outcome: Outcome
        if responder is None:
            outcome = Outcome(kind, False, f"no responder for {kind!r} is configured")
        else:
            outcome = self._act(responder, action, incident)
        record = ActionRecord(
            outcome.kind,
            outcome.ok,
            outcome.summary,
            wall_iso(self._wall()),
            outcome.details,
            attempt,
        )
        with self.store.locked() as latch:
            latch.actions.append(record)
            held = outcome.details.get("held") if kind in HOLDS else None
            if isinstance(held, list):
                latch.add_held([str(q) for q in held])
        if not outcome.ok and attempt == 1:
            self._retry_at[kind] = self._wall() + RETRY_FIRST_SECONDS
        if self.metrics is not None:
            self.metrics.record_outcome(kind, outcome.ok)
        (log.info if outcome.ok else log.error)("%s: %s", kind, outcome.summary)
        return record

    def _act(self, responder: Responder, action: Action, incident: Incident) -> Outcome:
        kind = action.kind
        try:
            prepare = getattr(responder, "prepare", None)
            if prepare is None:
                return responder.respond(action, incident)
            prepared = self.store.read().started.get(kind)
            if prepared is None:
                fresh = prepare(action)
                if isinstance(fresh, Outcome):
                    return fresh
                prepared = fresh
                with self.store.locked() as latch:
                    latch.started[kind] = prepared
            out: Outcome = responder.respond_prepared(action, incident, prepared)  # type: ignore[attr-defined]
            return out
        except Exception as exc:  # a bug in one responder must not stop the others
            log.exception("%s failed", kind)
            return Outcome(kind, False, f"{kind} crashed: {type(exc).__name__}: {exc}")


def current_outcomes(latch: Latch) -> list[Outcome]:
    """Each action's latest outcome, in the order they were planned (then any others)."""
    kinds: list[str] = [a.kind for a in latch.planned]
    kinds += [a.kind for a in latch.actions if a.kind not in kinds]
    out = []
    for kind in dict.fromkeys(kinds):
        last = latch.latest(kind)
        if last is not None:
            details = dict(last.details)
            summary = (
                last.summary if last.attempt == 1 else f"{last.summary} (attempt {last.attempt})"
            )
            out.append(Outcome(last.kind, last.ok, summary, details))
    return out
