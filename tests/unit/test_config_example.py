"""etc/stormwatch.toml.example: loads, equals the defaults, covers every key, examples valid.

The example sets every key to its default (keys whose default is "unset" appear as
``#: key = value`` examples, since TOML has no null), so this cannot drift from
``watcher/config.py``: a new key without an entry, a changed default, or an example
value that no longer validates fails here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from watcher.core.settings import Settings
from watcher.runtime.config import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "stormwatch.toml.example"
_TABLE = re.compile(r"^\[([a-z_]+)\]\s*$")
_ALTERNATIVE = re.compile(r"^#: (?P<key>[a-z_]+) = (?P<value>.+)$")


def fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``("section.key", default)`` for every leaf setting."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from fields(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", info.get_default(call_default_factory=True)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def alternatives() -> list[tuple[int, str, str]]:
    """``(line, "section.key", "key = value")`` for each ``#: `` example line."""
    out = []
    table = ""
    for lineno, line in enumerate(EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        if m := _TABLE.match(line):
            table = m.group(1)
        elif m := _ALTERNATIVE.match(line):
            key = f"{table}.{m['key']}" if table else m["key"]
            out.append((lineno, key, f"{m['key']} = {m['value']}"))
    return out


def test_the_example_loads_and_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE) == Settings()


def test_every_setting_is_in_the_example() -> None:
    active = flatten(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    shown = set(active) | {key for _, key, _ in alternatives()}
    missing = [key for key, _ in fields(Settings) if key not in shown]
    assert not missing, f"{EXAMPLE.name} lacks {missing}: add each with its default and why"


def test_keys_left_out_are_exactly_those_without_a_toml_default() -> None:
    """A key may only be left out (shown as a ``#:`` example) when its default is unset."""
    active = flatten(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    left_out = {key: default for key, default in fields(Settings) if key not in active}
    assert left_out, "the unset defaults (kill_after_seconds, config_file) are examples"
    assert all(default is None for default in left_out.values()), left_out


def test_every_key_has_a_comment_saying_why() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    bare = []
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            above = lines[i - 1] if i else ""
            if not above.startswith("#"):
                bare.append(f"{EXAMPLE.name}:{i + 1}: {line}")
    assert not bare, "keys without a comment above them:\n" + "\n".join(bare)


@pytest.mark.parametrize(
    ("lineno", "key", "assignment"), alternatives(), ids=[a[1] for a in alternatives()]
)
def test_each_commented_example_is_valid(
    lineno: int, key: str, assignment: str, tmp_path: Path
) -> None:
    """Uncommented on its own (replacing the default line), the example still loads."""
    section, _, name = key.rpartition(".")
    text = (f"[{section}]\n" if section else "") + assignment + "\n"
    path = tmp_path / "one.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path)  # raises ConfigError naming the key if invalid
    value = getattr(getattr(settings, section) if section else settings, name)
    default = dict(fields(Settings))[key]
    assert value != default, f"{EXAMPLE.name}:{lineno}: example equals the default"


def test_the_example_names_the_default_paths() -> None:
    """The settings path and state directory it names are the ones the code uses."""
    from watcher.core.settings import DEFAULT_STATE_DIR
    from watcher.runtime.config import DEFAULT_CONFIG

    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.startswith(f"# {DEFAULT_CONFIG} ")
    assert f'state_dir = "{DEFAULT_STATE_DIR}"' in text
