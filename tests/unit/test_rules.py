"""Rule files: the bundled defaults load; every mistake is refused with file, line, rule, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.runtime.rulefiles import RuleError, bundled_rules_dir, load_rules, parse_rule_text

GOOD = """\
[[rule]]
name = "x"
trip_at = 5
[rule.match]
event = "delivery"
sender = "null"
[rule.window]
seconds = 60
"""


def test_bundled_rules_load() -> None:
    names = {r.rule.name for r in load_rules()}
    assert names == {
        "backscatter", "forwarding-loop", "bounce-burst",
        "sasl-flood", "local-flood", "client-flood",
    }  # fmt: skip
    assert all(Path(r.path).parent == bundled_rules_dir() for r in load_rules())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("seconds = 60", "seconds = -1"), "f.toml:8: rule 'x': window.seconds: "),
        (GOOD.replace('sender = "null"', 'sender = "nul"'), "f.toml:6: rule 'x': match.sender: "),
        (
            GOOD.replace("trip_at = 5", "trip_at = 5\ncolour = 1"),
            "f.toml:4: rule 'x': colour: unknown key",
        ),
        (
            GOOD.replace("trip_at = 5", "warn_at = 9\ntrip_at = 5"),
            "warn_at (9) must be below trip_at (5)",
        ),
        (GOOD.replace("trip_at = 5\n", ""), "give warn_at, trip_at or both"),
        (GOOD.replace('name = "x"', 'name = "Bad Name"'), "f.toml:2: rule 'Bad Name': name: "),
        (
            GOOD.replace("[rule.window]\nseconds = 60\n", ""),
            "f.toml:1: rule 'x': window: Field required",
        ),
        (GOOD.replace("[[rule]]", "[[rule]"), "f.toml: not valid TOML"),
        ('[[rules]]\nname="x"\n', "f.toml:1: expected [[rule]] tables: rule: Field required"),
        (GOOD + GOOD, "f.toml: rule 'x': name used twice in one file"),
        (GOOD.replace('"delivery"', '"deliveries"'), "f.toml:5: rule 'x': match.event: "),
        (GOOD.replace("trip_at = 5", 'trip_at = 5\nactions = ["delete-mail"]'), "actions.0: "),
    ],
)
def test_bad_rule_is_refused_with_where_and_why(text: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule_text(text, "f.toml")
    assert message in str(err.value)


def test_second_rule_error_names_its_own_line(tmp_path: Path) -> None:
    text = GOOD + GOOD.replace('name = "x"', 'name = "y"').replace("seconds = 60", "seconds = 0")
    with pytest.raises(RuleError, match=r"f.toml:16: rule 'y': window.seconds"):
        parse_rule_text(text, "f.toml")


def test_directory_overrides_bundled_rule_by_name_and_can_disable(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        GOOD.replace('name = "x"', 'name = "backscatter"').replace("trip_at = 5", "trip_at = 50")
        + '\n[[rule]]\nname = "bounce-burst"\nenabled = false\ntrip_at = 1\n'
        "[rule.match]\n[rule.window]\nseconds = 1\n"
    )
    rules = {r.rule.name: r for r in load_rules([tmp_path])}
    assert rules["backscatter"].rule.trip_at == 50
    assert rules["backscatter"].path == str(tmp_path / "mine.toml")
    assert "bounce-burst" not in rules
    assert "forwarding-loop" in rules


def test_missing_rules_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="does not exist"):
        load_rules([tmp_path / "nope"])
