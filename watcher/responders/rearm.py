"""``stormwatch rearm``: undo what a trip changed, check it is undone, archive, clear the latch.

Nothing is deleted: held mail stays held unless the caller asks to release it.
It never reports success on a frozen Postfix: after the restore, ``postconf -n``
must show the values saved before the freeze, else the latch stays tripped.
It waits for a watcher that is carrying out the trip's actions (they never
overlap), and refuses a latch it cannot read unless told ``force``: then it
clears it, and says that Postfix must be checked by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from watcher.core.errors import StormwatchError
from watcher.core.incident import Incident
from watcher.core.latch import ActionRecord, Latch
from watcher.responders.actions import wall_iso
from watcher.responders.latchstore import LatchStore
from watcher.responders.postfix import (
    PostfixControl,
    PostfixError,
    combined,
    frozen_from,
    is_looping,
    restore,
)
from watcher.state.files import atomic_write_json, ensure_state_dir

# the ladder's changes to main.cf
POSTFIX_STEPS = ("contain-offender", "contain-postfix", "freeze-postfix")
ACTING_WAIT_SECONDS = 120.0


class RearmError(StormwatchError):
    """Nothing, or not everything, was undone: the switch stays tripped."""


@dataclass(frozen=True, slots=True)
class Rearmed:
    """What a re-arm did: ``steps`` for the admin, the incident, what was released."""

    was_tripped: bool
    steps: list[str]
    incident: Incident | None = None
    released: int = 0
    still_held: int = 0
    cleared: bool = True  # False: only an offender's block was lifted, still tripped


def rearm(
    store: LatchStore,
    control: PostfixControl,
    *,
    release: bool,
    force: bool = False,
    wall: Callable[[], float] = time.time,
    wait: float = ACTING_WAIT_SECONDS,
    offender: str = "",
) -> Rearmed:
    """Undo a trip (with ``offender``: that offender's block only, :func:`_lift`).

    RearmError (the latch stays tripped, run it again) when the latch
    cannot be read (unless ``force``), when another process keeps acting, or when
    Postfix cannot be put back."""
    with store.acting(wait) as mine:
        if not mine:
            raise RearmError(
                f"another process has been carrying out the trip's actions for {wait:g} s "
                "(a running watcher, or stormwatch trip): try again when it is done"
            )
        with store.locked() as latch:
            if latch.unknown:
                return _forced(store, latch, force, wall)
            if not latch.tripped or latch.incident is None:
                return Rearmed(False, ["the switch is not tripped: nothing to undo"])
            if offender and _others(latch):
                return _lift(control, latch, offender, release, wall)
            if offender:
                _check_offender(latch, offender)  # the incident changed nothing else: all
            steps = _restore_postfix(control, latch)
            released, on_hold, held_step = _held(control, latch, release)
            steps += held_step
            incident = latch.incident
            archive = store.state_dir / "incidents" / incident.id
            ensure_state_dir(archive)
            atomic_write_json(archive / "latch.json", latch.to_json())
            still = sorted(set(on_hold) - set(released))
            latch.clear(wall_iso(wall()), still)
            steps.append(f"re-armed; the incident's record is in {archive}")
    return Rearmed(True, steps, incident, len(released), len(still))


def _others(latch: Latch) -> bool:
    """Did the incident change Postfix by more than contain-offender (the scoped step,
    the freeze)?"""
    return any(
        a.kind in POSTFIX_STEPS and a.kind != "contain-offender" and a.details.get("applied")
        for a in latch.actions
    )


def _check_offender(latch: Latch, offender: str) -> None:
    planned = next((a for a in latch.planned if a.kind == "contain-offender"), None)
    if planned is None or planned.offender != offender:
        named = planned.offender if planned is not None else "none"
        raise RearmError(f"refusing: this incident's contained offender is {named}, not {offender}")


def _lift(
    control: PostfixControl, latch: Latch, offender: str, release: bool, wall: Callable[[], float]
) -> Rearmed:
    """Lift the offender's block only; the rest of the incident (the scoped step, the
    freeze) stays, and so does the latch. Its held mail stays held."""
    _check_offender(latch, offender)
    if release:
        raise RearmError(
            "--release-held with --offender: the switch stays tripped, so its held mail "
            "is not released here; release it with postsuper -H once read, or re-arm all"
        )
    changes = [
        frozen_from(a.details)
        for a in latch.actions
        if a.kind == "contain-offender" and a.details.get("applied")
    ]
    steps: list[str] = []
    if changes:
        frozen = combined(changes)
        present = {k: v for k, v in frozen.saved.items() if v is not None}
        absent = [k for k, v in frozen.saved.items() if v is None]
        try:
            if present:
                control.set(present)
            control.remove(absent)
            steps.append(control.reload())
        except (PostfixError, OSError) as exc:
            raise RearmError(f"could not lift the block of {offender}: {exc}") from exc
        steps.insert(0, f"lifted the block of {offender}: put back " + _params(frozen.saved))
    latch.actions.append(
        ActionRecord("contain-offender", True, f"block of {offender} lifted by rearm --offender",
                     wall_iso(wall()), {"lifted": offender}, 0)
    )  # fmt: skip
    steps.append(
        "the switch stays tripped (the incident's other Postfix steps remain): "
        "'stormwatch rearm' lifts them all"
    )
    return Rearmed(True, steps, latch.incident, cleared=False)


def _restore_postfix(control: PostfixControl, latch: Latch) -> list[str]:
    """Put back every parameter the incident's steps changed (contain, freeze, retries),
    then check that postconf -n shows them as they were."""
    changes = [
        frozen_from(a.details)
        for a in latch.actions
        if a.kind in POSTFIX_STEPS and a.details.get("applied")
    ]
    if not changes:
        return []
    frozen = combined(changes)
    try:
        steps = restore(control, frozen)
        shown = control.explicit(frozen.saved)
        now = {name: shown.get(name) for name in frozen.saved}  # in the saved order
    except (PostfixError, OSError) as exc:
        raise RearmError(f"re-arm failed, the switch stays tripped: {exc}") from exc
    if now != frozen.saved:
        raise RearmError(
            "re-arm failed, the switch stays tripped: after the restore, postconf -n "
            f"shows {_params(now)}, not the saved {_params(frozen.saved)}"
        )
    steps.append(f"checked: postconf -n shows {_params(now)}, as before the trip")
    return steps


def _held(
    control: PostfixControl, latch: Latch, release: bool
) -> tuple[list[str], list[str], list[str]]:
    """``(released, on hold, steps)``. A looping copy (its recipient's delay reason is
    the forwarding loop) stays held even when releasing: it carries a Delivered-To
    header for that recipient, so it can only loop, and bounce, again."""
    ours = set(latch.held)
    if not ours:
        return [], [], []  # nothing was held: no queue to ask (a notify-only incident)
    try:
        held = [
            e
            for e in control.queue()
            if e.get("queue_name") == "hold" and e.get("queue_id") in ours
        ]
        on_hold = [str(e["queue_id"]) for e in held]
        if release and on_hold:
            looping = {str(e["queue_id"]) for e in held if is_looping(e)}
            wanted = [q for q in on_hold if q not in looping]
            control.postsuper("-H", wanted)
            control.flush()
            steps = [f"released {len(wanted)} held message(s) and flushed the queue"]
            if looping:
                steps.append(
                    f"{len(looping)} looping cop(ies) stay on hold: each carries a "
                    "Delivered-To header for its recipient and would bounce again "
                    "(mail forwarding loop); postqueue -j shows them"
                )
            return wanted, on_hold, steps
    except (PostfixError, OSError) as exc:
        raise RearmError(f"re-arm failed, the switch stays tripped: {exc}") from exc
    if not on_hold:
        return [], on_hold, []
    return (
        [],
        on_hold,
        [
            f"{len(on_hold)} message(s) stay on hold (the storm's bounces and looping "
            "originals; held mail never expires): 'stormwatch rearm --release-held' was "
            "not given. Inspect with postqueue -j; release one with postsuper -H ID"
        ],
    )


def _forced(store: LatchStore, latch: Latch, force: bool, wall: Callable[[], float]) -> Rearmed:
    found, why = store.raw(), latch.unknown
    if not force:
        raise RearmError(
            f"refusing to re-arm: the latch cannot be read ({why}), so what the "
            "trip changed cannot be undone from it. It holds:\n"
            f"{found}\n"
            "Check Postfix by hand (postconf -n; postqueue -j for held mail), then run "
            "'stormwatch rearm --force' to clear it (it is kept aside, not deleted)."
        )
    aside = store.set_aside(wall())
    latch.clear(wall_iso(wall()), [])
    return Rearmed(
        True,
        [
            f"the unreadable latch ({why}) was moved to {aside}",
            "NOT checked: Postfix's settings and held mail (the latch could not say what "
            "the trip changed): look at postconf -n and postqueue -j",
            "re-armed (--force)",
        ],
    )


def _params(values: dict[str, str | None]) -> str:
    return ", ".join(f"{k}={'(absent)' if v is None else repr(v)}" for k, v in values.items())
