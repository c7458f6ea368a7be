"""Rule files: TOML, validated by pydantic, refused at start-up when wrong.

A rule file holds one or more ``[[rule]]`` tables. Rules are loaded from the
bundled defaults first, then from each directory given (``--rules`` or the
config's ``rules_dirs``), in order; a later rule with the same name replaces
the earlier one. ``enabled = false`` switches a bundled rule off.

Errors name the file, the line where it can be told, the rule and the field::

    rules/backscatter.toml:14: rule 'backscatter': window.seconds: Input should
    be greater than 0 (got -5)
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from watcher.runtime.tomlconf import describe

ActionKind = Literal["notify", "stop-fetchmail", "freeze-postfix", "hold-bounces", "command"]
EventKind = Literal["delivery", "bounce-notice", "forwarding-loop"]
GroupBy = Literal["none", "recipient-domain", "recipient", "sender", "relay", "transport"]

NAME_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which events a rule counts. Every condition given must hold."""

    event: EventKind = "delivery"
    sender: Literal["any", "null", "non-null"] = Field(
        "any", description="envelope sender: 'null' is from=<> (bounces)"
    )
    agents: tuple[str, ...] | None = Field(
        None, description="delivery programs, e.g. ['smtp'] (not lmtp/local/virtual/pipe)"
    )
    transports: tuple[str, ...] | None = Field(
        None, description="master.cf service names, e.g. ['smtp', 'relay']"
    )
    statuses: tuple[str, ...] | None = Field(None, description="e.g. ['sent']")
    remote: bool = Field(
        False,
        description="only deliveries to a network relay host[ip]:port that is not a content filter",
    )
    exclude_relays: tuple[str, ...] = Field(
        (), description="more relays never counted: 'ip:port', '[ipv6]:port', 'host:port' or 'ip'"
    )
    notices: tuple[str, ...] | None = Field(
        None, description="bounce-notice kinds, e.g. ['sender non-delivery']"
    )


class Window(_Strict):
    seconds: Annotated[float, Field(gt=0, le=7 * 86400)]
    group_by: GroupBy = "none"


class Rule(_Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    description: str = ""
    enabled: bool = True
    match: Match
    window: Window
    warn_at: Annotated[int, Field(ge=1, le=100_000)] | None = None
    trip_at: Annotated[int, Field(ge=1, le=100_000)] | None = None
    actions: tuple[ActionKind, ...] = ("notify",)

    @model_validator(mode="after")
    def _thresholds(self) -> Rule:
        if self.warn_at is None and self.trip_at is None:
            raise ValueError("give warn_at, trip_at or both")
        if self.warn_at is not None and self.trip_at is not None and self.warn_at >= self.trip_at:
            raise ValueError(f"warn_at ({self.warn_at}) must be below trip_at ({self.trip_at})")
        return self


class RuleFile(_Strict):
    rule: list[dict[str, Any]] = Field(min_length=1)


class RuleError(Exception):
    """A rule file is wrong; the message says where and why."""


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: Rule
    path: str


def bundled_rules_dir() -> Path:
    """The default rules shipped inside the package (``rules/`` in the source tree)."""
    spec = importlib.util.find_spec("watcher.default_rules")
    if spec is None or not spec.submodule_search_locations:
        raise RuleError("the bundled rules (watcher.default_rules) are not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def load_rules(dirs: Sequence[Path] = (), *, include_bundled: bool = True) -> list[LoadedRule]:
    """Load the bundled rules, then ``dirs`` in order; later names override."""
    by_name: dict[str, LoadedRule] = {}
    sources = ([bundled_rules_dir()] if include_bundled else []) + list(dirs)
    for d in sources:
        if not d.is_dir():
            raise RuleError(f"{d}: rules directory does not exist")
        for path in sorted(d.glob("*.toml")):
            for loaded in load_rule_file(path):
                by_name[loaded.rule.name] = loaded
    return [r for r in by_name.values() if r.rule.enabled]


def load_rule_file(path: Path) -> list[LoadedRule]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from exc
    return parse_rule_text(text, str(path))


def parse_rule_text(text: str, path: str) -> list[LoadedRule]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from exc
    try:
        tables = RuleFile.model_validate(data).rule
    except ValidationError as exc:
        raise RuleError(describe(exc, text, path, "expected [[rule]] tables")) from exc
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if _RULE_HEADER_RE.match(ln)]
    out: list[LoadedRule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        label = f"rule #{index + 1}"
        if isinstance(table.get("name"), str):
            label = f"rule '{table['name']}'"
        try:
            rule = Rule.model_validate(table)
        except ValidationError as exc:
            start = starts[index] if index < len(starts) else 0
            end = starts[index + 1] if index + 1 < len(starts) else None
            raise RuleError(describe(exc, text, path, label, start, end)) from exc
        if rule.name in seen:
            raise RuleError(f"{path}: {label}: name used twice in one file")
        seen.add(rule.name)
        out.append(LoadedRule(rule, path))
    return out


_RULE_HEADER_RE = re.compile(r"^\s*\[\[\s*rule\s*\]\]\s*(#.*)?$")
