"""``stormwatch rearm``: undo what a trip changed, archive its record, clear the latch.

Nothing is deleted: held mail stays held unless the caller asks to release it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from watcher.core.incident import Incident
from watcher.responders.killswitch import iso_wall
from watcher.responders.latchstore import LatchStore
from watcher.responders.postfix import PostfixControl, frozen_from, restore
from watcher.state.files import atomic_write_json, ensure_state_dir


@dataclass(frozen=True, slots=True)
class Rearmed:
    """What a re-arm did: ``steps`` for the admin, the incident, what was released."""

    was_tripped: bool
    steps: list[str]
    incident: Incident | None = None
    released: int = 0
    still_held: int = 0


def rearm(
    store: LatchStore,
    control: PostfixControl,
    *,
    release: bool,
    wall: Callable[[], float] = time.time,
) -> Rearmed:
    """Undo a trip.

    Raises StateError if the latch cannot be read and PostfixError if Postfix
    cannot be put back; the latch then stays tripped, so it can be run again.
    """
    with store.locked() as latch:
        if not latch.tripped or latch.incident is None:
            return Rearmed(False, ["the switch is not tripped: nothing to undo"])
        incident = latch.incident
        steps: list[str] = []
        for a in latch.actions:
            if a.kind == "freeze-postfix" and a.details.get("applied"):
                steps += restore(control, frozen_from(a.details))
        ours = set(latch.held)
        on_hold = [
            e["queue_id"]
            for e in control.queue()
            if e.get("queue_name") == "hold" and e.get("queue_id") in ours
        ]
        released = 0
        if release and on_hold:
            released = control.postsuper("-H", on_hold)
            control.flush()
            steps.append(f"released {released} held message(s) and flushed the queue")
        elif on_hold:
            steps.append(
                f"{len(on_hold)} message(s) stay on hold (the storm's bounces and looping "
                "originals; held mail never expires): 'stormwatch rearm --release-held' was "
                "not given. Inspect with postqueue -j; release one with postsuper -H ID"
            )
        archive = store.state_dir / "incidents" / incident.id
        ensure_state_dir(archive)
        atomic_write_json(archive / "latch.json", latch.to_json())
        still = len(on_hold) - released
        latch.clear(
            iso_wall(wall()), sorted(set(on_hold) - set(on_hold[:released])) if still else []
        )
        steps.append(f"re-armed; the incident's record is in {archive}")
    return Rearmed(True, steps, incident, released, still)
