"""``stormwatch check-config``: validate the settings and rules, print the effective ones."""

from __future__ import annotations

import argparse
import json
import sys

from watcher.cli.common import EXIT_HELP, EXIT_OK, Parents, rules_from, settings_from
from watcher.runtime.config import DEFAULT_CONFIG
from watcher.runtime.rulefiles import bundled_rules_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    p = sub.add_parser(
        "check-config",
        parents=[parents.base, parents.rules],
        help="validate the settings and rules, print the effective ones",
        description="Reads the settings and every rule file and checks them as 'run' does "
        "at start and on reload; prints the effective settings and rules, and warnings.",
        epilog=EXIT_HELP,
    )
    p.add_argument("--quiet", action="store_true", help="print only problems (for ExecStartPre=)")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SPEC",
        help="the source(s) run will be given (default: found on the host, as run does)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the other commands (replay above all) start without apprise and psutil
    from watcher.cli.run import chosen_sources, source_warnings
    from watcher.runtime import validate

    settings = settings_from(args)
    rules = rules_from(settings, args.rules)
    validate.check(settings)
    warnings = validate.warnings(settings, [lr.rule for lr in rules])
    specs, _why = chosen_sources(args.source, settings.postfix.config_directory)
    warnings += source_warnings(specs, settings.postfix.config_directory)
    formats = [_sniff(spec) for spec in specs]
    warnings += [w for _, w in formats if w]
    w = sys.stdout.write
    if args.quiet:
        for warning in warnings:
            w(f"WARNING: {warning}\n")
        return EXIT_OK
    src = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    w(f"settings: {src or 'built-in defaults (no settings file)'}\n")
    for key, value in settings.model_dump(mode="json").items():
        w(f"  {key} = {json.dumps(value)}\n")
    w(f"sources: {', '.join(specs)}\n")
    for spec, (said, _) in zip(specs, formats, strict=True):
        if said:
            w(f"  {spec}: {said}\n")
    w(f"rules ({len(rules)} enabled; bundled from {bundled_rules_dir()}):\n")
    for lr in rules:
        r = lr.rule
        thresholds = ", ".join(
            f"{k}={v}" for k, v in (("warn_at", r.warn_at), ("trip_at", r.trip_at)) if v
        )
        w(
            f"  {r.name}: {r.match.event}, {thresholds} in {r.window.seconds:g} s, "
            f"actions {', '.join(r.actions)}  [{lr.path}]\n"
        )
    for warning in warnings:
        w(f"WARNING: {warning}\n")
    w("OK\n")
    return EXIT_OK


def _sniff(spec: str) -> tuple[str, str]:
    """(what a file source's last lines say of its header format, a warning or "")."""
    from watcher.core.headers import EXAMPLES
    from watcher.sources.sniff import TAIL_BYTES, sniff_file

    if not spec.startswith("file:"):
        return ("header format journal (fields)" if spec == "journal" else ""), ""
    path = spec[len("file:") :]
    try:
        s = sniff_file(path)
    except OSError as exc:
        return f"cannot read its last lines: {exc.strerror or exc}", ""
    if not s.postfix_lines:
        return (
            f"no Postfix line in its last {TAIL_BYTES >> 10} KiB: header format not known yet",
            "",
        )
    kind, n = s.formats.most_common(1)[0] if s.formats else ("unknown", 0)
    said = (
        f"header format {kind} ({EXAMPLES.get(kind, '')}): {n} of the last "
        f"{s.postfix_lines} Postfix lines"
    )
    if not s.unreadable:
        return said, ""
    reason, line = s.unreadable[-1]
    return said, (
        f"{path}: {len(s.unreadable)} of the last {s.postfix_lines} Postfix lines have a "
        f"header stormwatch cannot read ({reason}): {line[:200]}"
    )
