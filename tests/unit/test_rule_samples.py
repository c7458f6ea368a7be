"""Every bundled rule against its annotated samples, fail2ban style: tests/data/rules/<rule>.log.

A line after ``#> counted`` must be counted by the rule; a line after ``#> not counted
[FIELD, ...]`` must not be, and must be counted once those fields of the rule's
``[rule.match]`` are set back to their defaults: the sample shows that condition doing
the work. Other lines are context (the qmgr lines the join needs) and are never
counted. Every condition a bundled rule sets has at least one such sample, and every
rule at least one counted line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.rules import Match, Rule
from watcher.runtime.rulefiles import load_rules

DATA = Path(__file__).resolve().parent.parent / "data" / "rules"
BUNDLED = {r.rule.name: r.rule for r in load_rules()}
_NOT = re.compile(r"^#> not counted \[([a-z_, ]+)\]: .+")


@dataclass(frozen=True)
class Sample:
    lineno: int  # 1-based, among the log lines fed (comments left out)
    text: str
    counted: bool
    fields: tuple[str, ...]  # for a not-counted sample: the conditions that exclude it
    where: str


@dataclass(frozen=True)
class SampleFile:
    lines: list[str]
    samples: list[Sample]
    context: dict[str, str]


def _read(rule: str) -> SampleFile:
    path = DATA / f"{rule}.log"
    lines: list[str] = []
    samples: list[Sample] = []
    context: dict[str, str] = {}
    pending: tuple[bool, tuple[str, ...], str] | None = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.name}:{n}"
        if raw.startswith("# context:"):
            context = json.loads(raw[len("# context:") :])
        elif raw.startswith("#> counted"):
            pending = (True, (), where)
        elif raw.startswith("#> not counted"):
            m = _NOT.match(raw)
            assert m, f"{where}: write '#> not counted [field, ...]: why'"
            pending = (False, tuple(f.strip() for f in m.group(1).split(",")), where)
        elif raw.startswith("#") or not raw.strip():
            assert pending is None, f"{where}: an annotation must be followed by its line"
        else:
            lines.append(raw)
            if pending is not None:
                samples.append(Sample(len(lines), raw, pending[0], pending[1], pending[2]))
                pending = None
    return SampleFile(lines, samples, context)


def _counted(rule: Rule, f: SampleFile) -> set[int]:
    """Line numbers ``rule`` counted when the whole file is fed through a pipeline."""
    ref = datetime.fromisoformat(f.context.get("reference", "2026-11-28T12:00:00+00:00"))
    parser = Parser(reference=ref, tz=ZoneInfo(f.context.get("tz", "UTC")))
    p = Pipeline.build([rule], parser)
    p.run(f.lines, "samples")
    return {e.where.lineno for e in p.summaries[rule.name].evidence}


def _without(rule: Rule, fields: tuple[str, ...]) -> Rule:
    defaults = Match.model_fields
    unset = {f: defaults[f].default for f in fields}
    return rule.model_copy(update={"match": rule.match.model_copy(update=unset)})


def _conditions(rule: Rule) -> set[str]:
    """The match fields a rule sets away from their defaults."""
    return {
        name
        for name, info in Match.model_fields.items()
        if getattr(rule.match, name) != info.default
    }


@pytest.mark.parametrize("rule", sorted(BUNDLED))
def test_each_bundled_rule_has_samples(rule: str) -> None:
    assert (DATA / f"{rule}.log").is_file(), f"tests/data/rules/{rule}.log is missing"


@pytest.mark.parametrize("rule", sorted(BUNDLED))
def test_counted_lines_are_exactly_the_annotated_ones(rule: str) -> None:
    f = _read(rule)
    want = {s.lineno for s in f.samples if s.counted}
    got = _counted(BUNDLED[rule], f)
    extra = [f.lines[n - 1] for n in sorted(got - want)]
    missed = [s.where for s in f.samples if s.counted and s.lineno not in got]
    assert not extra, f"{rule} counted lines not annotated '#> counted': {extra}"
    assert not missed, f"{rule} did not count: {missed}"


@pytest.mark.parametrize("rule", sorted(BUNDLED))
def test_each_not_counted_sample_is_excluded_by_the_conditions_it_names(rule: str) -> None:
    f = _read(rule)
    for s in f.samples:
        if s.counted:
            continue
        unknown = set(s.fields) - set(Match.model_fields)
        assert not unknown, f"{s.where}: no such match field {sorted(unknown)}"
        loosened = _without(BUNDLED[rule], s.fields)
        assert s.lineno in _counted(loosened, f), (
            f"{s.where}: still not counted with match {', '.join(s.fields)} at their "
            "defaults: it is excluded by something else"
        )


@pytest.mark.parametrize("rule", sorted(BUNDLED))
def test_every_condition_of_the_rule_has_a_counted_and_a_not_counted_sample(rule: str) -> None:
    f = _read(rule)
    assert any(s.counted for s in f.samples), f"{rule}: no counted sample"
    shown = {field for s in f.samples if not s.counted for field in s.fields}
    missing = _conditions(BUNDLED[rule]) - shown
    assert not missing, f"{rule}: no not-counted sample shows the condition(s) {sorted(missing)}"
