"""What every responder gets and gives back.

A responder acts on one :class:`~watcher.decide.Action` and returns an
:class:`Outcome`: what it did, whether it worked, and the details a human (the
page, the incident report) and ``rearm`` (saved Postfix values, held queue
IDs) need. A responder never raises for an expected failure (a missing
binary, a non-zero exit, a timeout, nothing to do): that is an outcome.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from watcher.core.decide import Action
from watcher.core.incident import Incident

Level = Literal["info", "success", "warning", "failure"]  # of a page

# How responders run a program: ``subprocess.run`` itself, or a fake in unit tests.
Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one action went. ``details`` must be JSON-serialisable."""

    kind: str
    ok: bool
    summary: str
    details: dict[str, object] = field(default_factory=dict)


class Responder(Protocol):
    """Acts on actions of one kind."""

    kind: str

    def respond(self, action: Action, incident: Incident) -> Outcome: ...
