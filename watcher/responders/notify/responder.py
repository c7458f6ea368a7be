"""``notify``: the responder that queues the page (or the early warning) and returns at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.responders.base import Level, Outcome
from watcher.responders.notify.delivery import Notifier
from watcher.responders.notify.text import render_page, render_warning


def _no_outcomes() -> Sequence[Outcome]:
    return ()


class NotifyResponder:
    """``notify``: queues the page (or the warning) and returns at once.

    ``outcomes`` returns what the other responders of this trip reported so
    far; the page lists them, so run this responder after them.
    """

    kind: str = "notify"

    def __init__(
        self, notifier: Notifier, *, outcomes: Callable[[], Sequence[Outcome]] = _no_outcomes
    ) -> None:
        self.notifier = notifier
        self._outcomes = outcomes

    def respond(self, action: Action, incident: Incident) -> Outcome:
        level: Level
        if action.severity == "warn":
            title, body = render_warning(incident)
            level = "warning"
        else:
            title, body = render_page(incident, self._outcomes())
            level = "failure"
        targets = self.notifier.target_count()
        details: dict[str, object] = {
            "targets": targets,
            "severity": action.severity,
            "title": title,
        }
        problems = self.notifier.problems
        if problems:
            details["problems"] = problems
        if not targets:
            return Outcome(self.kind, False, "no notification target: nobody was paged", details)
        self.notifier.send(title, body, level)
        what = "warning" if action.severity == "warn" else "page"
        return Outcome(self.kind, True, f"{what} queued for {targets} target(s)", details)
