"""The scoped containment's order of work: the bounces first, on the storm's clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.incidents import make_incident
from watcher.core import plan
from watcher.core.decide import Action
from watcher.core.settings import PostfixSettings, Settings
from watcher.responders.contain import ContainResponder
from watcher.responders.postfix import PostfixControl, PostfixError

ACTION = Action(
    "contain-postfix", "trip", "forwarding-loop", 0, 2, 2, 600.0,
    addresses=("list@lists.example.org",),
)  # fmt: skip


class Recording(PostfixControl):
    """postconf/postmap/reload as calls in a list; main.cf a real file."""

    def __init__(self, tmp: Path, fail_postmap_for: str = "") -> None:
        super().__init__(str(tmp))
        self.main_cf.write_text("myhostname = mx\n")
        self.calls: list[tuple[str, object]] = []
        self.fail_postmap_for = fail_postmap_for

    def explicit(self, names: object) -> dict[str, str | None]:
        return dict.fromkeys(plan.CONTAIN_PARAMS)

    def command(self, argv: Sequence[str], *, stdin: str | None = None) -> str:
        if argv[0] == "postmap":
            key, table = argv[-2], argv[-1]
            self.calls.append(("postmap", key))
            if key == self.fail_postmap_for:
                raise PostfixError("postmap: table broken")
            want = "retry:4.7.1 " if key == "<>" else "HOLD "
            return want + plan.HELD + "\n" if table else ""
        self.calls.append((argv[0], tuple(argv)))
        return ""

    def set(self, values: Mapping[str, str]) -> None:
        self.calls.append(("set", tuple(values)))
        with self.main_cf.open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in values.items())

    def reload(self) -> str:
        self.calls.append(("reload", ""))
        return "SIGHUP"

    def param(self, name: str) -> str:
        return ""


def _responder(tmp_path: Path, control: Recording) -> ContainResponder:
    settings = Settings(postfix=PostfixSettings(config_directory=str(tmp_path)))

    def wall() -> float:  # the time, as the number of calls so far
        return float(len(control.calls))

    return ContainResponder(settings, control, wall=wall)


def test_the_bounces_are_contained_and_reloaded_before_the_recipient_hold(tmp_path: Path) -> None:
    control = Recording(tmp_path)
    responder = _responder(tmp_path, control)
    responder.precheck()  # at start
    control.calls.clear()
    out = responder.respond(ACTION, make_incident("i-1", "forwarding-loop"))
    assert out.ok, out.summary
    assert not [c for c in control.calls if c[0] == "postconf"]  # postconf -P: at start
    assert control.calls == [
        ("set", ("soft_bounce", plan.SDTM)),
        ("reload", ""),  # bounces held: no postmap on the storm's clock before this
        ("postmap", "list@lists.example.org"),
        ("set", (plan.RECIPIENT_RESTRICTIONS,)),
        ("reload", ""),
    ]
    assert out.details["bounces_held_at"] == 2.0  # right after the first reload


def test_without_a_precheck_the_null_table_is_checked_first(tmp_path: Path) -> None:
    control = Recording(tmp_path)
    out = _responder(tmp_path, control).respond(ACTION, make_incident("i-1", "forwarding-loop"))
    assert out.ok
    assert [c[0] for c in control.calls if c[0] != "postconf"][:2] == ["postmap", "set"]


def test_a_broken_hold_table_still_leaves_the_bounces_contained(tmp_path: Path) -> None:
    control = Recording(tmp_path, fail_postmap_for="list@lists.example.org")
    out = _responder(tmp_path, control).respond(ACTION, make_incident("i-1", "forwarding-loop"))
    assert not out.ok  # retried while tripped
    assert out.summary.startswith(
        "bounces contained, but new mail for list@lists.example.org NOT held: postmap"
    )
    assert ("set", ("soft_bounce", plan.SDTM)) in control.calls
    assert ("reload", "") in control.calls
