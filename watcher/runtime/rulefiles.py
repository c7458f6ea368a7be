"""Rule files: TOML ``[[rule]]`` tables, refused at start-up when wrong.

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
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watcher.core.errors import ConfigError
from watcher.core.rules import Rule
from watcher.runtime.tomlconf import describe
from watcher.state.trust import check_config_path


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: list[dict[str, Any]] = Field(min_length=1)


class RuleError(ConfigError):
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


def load_rules(
    dirs: Sequence[str | os.PathLike[str]] = (), *, include_bundled: bool = True
) -> list[LoadedRule]:
    """Load the bundled rules, then ``dirs`` in order; later names override."""
    by_name: dict[str, LoadedRule] = {}
    sources = ([bundled_rules_dir()] if include_bundled else []) + [Path(d) for d in dirs]
    for d in sources:
        if not d.is_dir():
            raise RuleError(f"{d}: rules directory does not exist")
        check_config_path(d, "the rules directory")
        for path in sorted(d.glob("*.toml")):
            check_config_path(path, "the rules file")
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
