"""The ``command`` action: run the configured argv, never through a shell.

Each argv element may hold named placeholders (``{rule}``, ``{count}``, ...;
``{{`` and ``}}`` for literal braces). Each element is filled on its own, so a
value is always exactly one piece of one argument, whatever it holds: spaces,
quotes, ``$(...)``, backticks, ``;``, newlines. Values are inserted once and
never parsed again, so a value holding ``{rule}`` stays as it is.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from string import Formatter

from watcher.core.decide import Action
from watcher.core.incident import Incident
from watcher.core.settings import CommandSettings
from watcher.responders.base import Outcome, Runner

log = logging.getLogger(__name__)

PLACEHOLDERS: tuple[str, ...] = (
    "rule",
    "count",
    "threshold",
    "window",
    "incident",
    "trip_time",
    "first_time",
    "host",
    "trip_line",
    "domains",
)
TAIL_BYTES = 2048
# Linux refuses any one argument longer than 128 KiB (MAX_ARG_STRLEN): keep values well under.
MAX_VALUE_CHARS = 8192


def validate_argv(argv: Sequence[str]) -> list[str]:
    """Errors in a configured argv, each naming the element; [] when it is fine.

    Only bare placeholder names are allowed: no positional fields, no attribute
    or index access, no conversion, no format spec. The program (argv[0]) takes
    no placeholder at all.
    """
    errors: list[str] = []
    if argv and not argv[0]:
        errors.append("command.argv[0]: the program is empty")
    for i, element in enumerate(argv):
        where = f"command.argv[{i}] {element!r}"
        try:
            fields = list(Formatter().parse(element))
        except ValueError as exc:
            errors.append(f"{where}: {exc} (write {{{{ and }}}} for literal braces)")
            continue
        for _literal, name, spec, conversion in fields:
            if name is None:
                continue
            error = _field_error(name, spec, conversion)
            if error:
                errors.append(f"{where}: {error}")
            elif i == 0:
                errors.append(f"{where}: the program name cannot hold a placeholder")
    return errors


def _field_error(name: str, spec: str | None, conversion: str | None) -> str:
    allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    if name == "" or name.isdigit():
        return f"positional field {{{name}}}: use a named placeholder ({allowed})"
    if "." in name or "[" in name:
        return f"{{{name}}}: no attribute or index access, only {allowed}"
    if name not in PLACEHOLDERS:
        return f"unknown placeholder {{{name}}}: use one of {allowed}"
    if conversion is not None:
        return f"{{{name}!{conversion}}}: no conversion allowed, write {{{name}}}"
    if spec:
        return f"{{{name}:{spec}}}: no format spec allowed, write {{{name}}}"
    return ""


def placeholder_values(incident: Incident) -> dict[str, str]:
    """The text each placeholder stands for (NUL bytes escaped, overlong values cut)."""
    values = {
        "rule": incident.rule,
        "count": str(incident.count),
        "threshold": str(incident.threshold),
        "window": f"{incident.window_seconds:g}",
        "incident": incident.id,
        "trip_time": incident.trip_time,
        "first_time": incident.first_time,
        "host": incident.host,
        "trip_line": incident.trip_line,
        "domains": ",".join(domain for domain, _n in incident.top_domains),
    }
    return {k: _arg_safe(v) for k, v in values.items()}


def _arg_safe(value: str) -> str:
    value = value.replace("\x00", "\\x00")  # an argument cannot hold a NUL byte
    if len(value) > MAX_VALUE_CHARS:
        cut = len(value) - MAX_VALUE_CHARS
        value = f"{value[:MAX_VALUE_CHARS]}...[{cut} more characters]"
    return value


def fill_argv(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Fill each element separately; call only on an argv that :func:`validate_argv` passed."""
    out = []
    for element in argv:
        parts = []
        for literal, name, _spec, _conversion in Formatter().parse(element):
            parts.append(literal)
            if name is not None:
                parts.append(values[name])
        out.append("".join(parts))
    return out


class CommandResponder:
    """``command``: runs ``settings.argv`` with the incident's values, with a timeout."""

    kind: str = "command"

    def __init__(
        self,
        settings: CommandSettings,
        *,
        run: Runner = subprocess.run,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._run = run
        self._clock = clock

    def respond(self, action: Action, incident: Incident) -> Outcome:
        template = self.settings.argv
        if not template:
            return Outcome(self.kind, False, "no command configured ([command] argv is empty)")
        errors = validate_argv(template)
        if errors:
            return Outcome(
                self.kind, False, "command not run: " + "; ".join(errors), {"errors": errors}
            )
        argv = fill_argv(template, placeholder_values(incident))
        timeout = self.settings.timeout_seconds
        program = argv[0]
        details: dict[str, object] = {"argv": argv, "timeout_seconds": timeout}
        start = self._clock()
        try:
            done = self._run(
                argv,
                timeout=timeout,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            details.update(
                returncode=None,
                timed_out=True,
                seconds=round(self._clock() - start, 3),
                stdout=_tail(exc.stdout),
                stderr=_tail(exc.stderr),
            )
            log.error("command %s timed out after %g s (killed)", program, timeout)
            return Outcome(
                self.kind, False, f"{program} timed out after {timeout:g} s (killed)", details
            )
        except FileNotFoundError:
            details["error"] = "not found"
            log.error("command %s: not found", program)
            return Outcome(self.kind, False, f"command not found: {program}", details)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            details["error"] = reason
            log.error("command %s could not start: %s", program, reason)
            return Outcome(self.kind, False, f"{program} could not start: {reason}", details)
        stdout, stderr = _tail(done.stdout), _tail(done.stderr)
        rc = done.returncode
        details.update(
            returncode=rc,
            timed_out=False,
            seconds=round(self._clock() - start, 3),
            stdout=stdout,
            stderr=stderr,
        )
        if rc == 0:
            log.info("command %s exited 0", program)
            return Outcome(self.kind, True, f"{program} exited 0", details)
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited {rc}"
        last = (stderr or stdout).strip().splitlines()
        summary = f"{program} {how}" + (f": {last[-1]}" if last else "")
        log.error("command %s %s", program, how)
        return Outcome(self.kind, False, summary, details)


def _tail(data: bytes | str | None) -> str:
    """The last 2 KiB of captured output, as text."""
    if data is None:
        return ""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    return data[-TAIL_BYTES:].decode("utf-8", "replace")
