"""The command responder: argv validation, filling, and outcomes, with a fake ``run``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import replace

import pytest

from tests.incidents import make_incident, with_line
from watcher.core.decide import Action
from watcher.core.settings import CommandSettings
from watcher.responders.command import (
    MAX_VALUE_CHARS,
    PLACEHOLDERS,
    TAIL_BYTES,
    CommandResponder,
    fill_argv,
    placeholder_values,
    validate_argv,
)

ACTION = Action("command", "trip", "forwarding-loop", 0, 100, 100, 300.0)
INCIDENT = make_incident(
    id="20111016T085252Z-forwarding-loop",
    rule="forwarding-loop",
    description="bounces of looping mail relayed out",
    count=100,
    threshold=100,
    window_seconds=300.0,
    first_time="2011-10-16T17:52:52+09:00",
    trip_time="2011-10-16T17:55:01+09:00",
    trip_line="Oct 16 17:55:01 mx postfix/smtp[1]: 1A2B3C: to=<a@b.example>, status=sent",
    top_domains=(("b.example", 60), ("c.example", 40)),
    host="mx1",
)


class FakeRun:
    def __init__(
        self,
        result: subprocess.CompletedProcess[bytes] | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.result = result
        self.error = error
        self.calls: list[tuple[list[str], dict[str, object]]] = []

    def __call__(
        self,
        args: Sequence[str],
        *,
        timeout: float,
        capture_output: bool,
        stdin: int,
        check: bool,
    ) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(
            (
                list(args),
                {
                    "timeout": timeout,
                    "capture_output": capture_output,
                    "stdin": stdin,
                    "check": check,
                },
            )
        )
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def done(rc: int = 0, out: bytes = b"", err: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.CompletedProcess(["x"], rc, out, err)


def responder(argv: Sequence[str], run: FakeRun, timeout: float = 5.0) -> CommandResponder:
    ticks = iter(float(i) for i in range(100))
    return CommandResponder(
        CommandSettings(argv=tuple(argv), timeout_seconds=timeout),
        run=run,
        clock=lambda: next(ticks),
    )


# ---------------------------------------------------------------- validate_argv


def test_every_placeholder_and_escaped_braces_are_valid() -> None:
    argv = ["/usr/local/bin/page", *(f"--{p}={{{p}}}" for p in PLACEHOLDERS), "{{literal}}"]
    assert validate_argv(argv) == []
    assert validate_argv([]) == []


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("{}", "positional field {}"),
        ("{0}", "positional field {0}"),
        ("{rule.__class__}", "no attribute or index access"),
        ("{rule[0]}", "no attribute or index access"),
        ("{rule:>20}", "no format spec allowed"),
        ("{count:{threshold}}", "no format spec allowed"),
        ("{rule!r}", "no conversion allowed"),
        ("{nope}", "unknown placeholder {nope}"),
        ("{ rule }", "unknown placeholder { rule }"),
        ("{rule", "expected '}' before end of string"),
        ("rule}", "Single '}' encountered"),
    ],
)
def test_invalid_fields_are_errors_naming_the_element(element: str, expected: str) -> None:
    errors = validate_argv(["/bin/true", "--x", element])
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"command.argv[2] {element!r}: ")
    assert expected in errors[0]


def test_the_program_takes_no_placeholder_and_cannot_be_empty() -> None:
    assert validate_argv(["{host}"]) == [
        "command.argv[0] '{host}': the program name cannot hold a placeholder"
    ]
    assert validate_argv(["", "x"]) == ["command.argv[0]: the program is empty"]


# ---------------------------------------------------------------- filling


def test_each_element_is_filled_on_its_own() -> None:
    values = placeholder_values(INCIDENT)
    argv = fill_argv(
        ["/bin/page", "{rule}", "--count={count}/{threshold}", "{window}s", "{{x}}", "{domains}"],
        values,
    )
    assert argv == [
        "/bin/page",
        "forwarding-loop",
        "--count=100/100",
        "300s",
        "{x}",
        "b.example,c.example",
    ]


def test_hostile_values_stay_one_argument_and_are_not_expanded_again() -> None:
    hostile = "x $(touch /tmp/pwned) `id` 'q' \"dq\" ; rm -rf / {rule} {0.__class__}\nline2"
    values = placeholder_values(replace(with_line(INCIDENT, hostile), host="h; reboot"))
    argv = fill_argv(["/bin/page", "{trip_line}", "--host={host}"], values)
    assert argv == ["/bin/page", hostile, "--host=h; reboot"]


def test_nul_is_escaped_and_overlong_values_are_cut() -> None:
    long_line = "A" * (MAX_VALUE_CHARS + 50)
    values = placeholder_values(replace(with_line(INCIDENT, long_line), host="a\x00b"))
    assert values["host"] == "a\\x00b"
    assert values["trip_line"] == "A" * MAX_VALUE_CHARS + "...[50 more characters]"


# ---------------------------------------------------------------- running


def test_success_runs_the_filled_argv_without_shell_and_with_stdin_closed() -> None:
    run = FakeRun(done(0, b"paged\n", b""))
    outcome = responder(["/bin/page", "{incident}"], run, timeout=7).respond(ACTION, INCIDENT)
    assert run.calls == [
        (
            ["/bin/page", "20111016T085252Z-forwarding-loop"],
            {"timeout": 7.0, "capture_output": True, "stdin": subprocess.DEVNULL, "check": False},
        )
    ]
    assert outcome.ok
    assert outcome.kind == "command"
    assert outcome.summary == "/bin/page exited 0"
    assert outcome.details["returncode"] == 0
    assert outcome.details["stdout"] == "paged\n"
    assert outcome.details["seconds"] == 1.0
    json.dumps(outcome.details)


def test_non_zero_exit_reports_the_code_and_last_stderr_line_and_keeps_2_kib() -> None:
    err = b"x" * 5000 + b"\nfatal: cannot page\n"
    outcome = responder(["/bin/page"], FakeRun(done(3, b"", err))).respond(ACTION, INCIDENT)
    assert not outcome.ok
    assert outcome.summary == "/bin/page exited 3: fatal: cannot page"
    stderr = outcome.details["stderr"]
    assert isinstance(stderr, str)
    assert len(stderr.encode()) == TAIL_BYTES
    assert stderr.endswith("fatal: cannot page\n")


def test_killed_by_a_signal() -> None:
    outcome = responder(["/bin/page"], FakeRun(done(-9))).respond(ACTION, INCIDENT)
    assert not outcome.ok
    assert outcome.summary == "/bin/page was killed by signal 9"


def test_timeout_is_an_outcome_with_the_output_so_far() -> None:
    error = subprocess.TimeoutExpired(["/bin/page"], 5.0, output=b"started\n", stderr=None)
    outcome = responder(["/bin/page"], FakeRun(error=error)).respond(ACTION, INCIDENT)
    assert not outcome.ok
    assert outcome.summary == "/bin/page timed out after 5 s (killed)"
    assert outcome.details["timed_out"] is True
    assert outcome.details["stdout"] == "started\n"
    assert outcome.details["stderr"] == ""
    json.dumps(outcome.details)


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        (FileNotFoundError(2, "No such file or directory"), "command not found: /bin/page"),
        (PermissionError(13, "Permission denied"), "/bin/page could not start: Permission denied"),
        (OSError(7, "Argument list too long"), "/bin/page could not start: Argument list too long"),
    ],
)
def test_a_program_that_cannot_start_is_an_outcome(error: OSError, summary: str) -> None:
    outcome = responder(["/bin/page"], FakeRun(error=error)).respond(ACTION, INCIDENT)
    assert not outcome.ok
    assert outcome.summary == summary
    json.dumps(outcome.details)


def test_nothing_configured_or_invalid_argv_runs_nothing() -> None:
    run = FakeRun(done())
    empty = responder([], run).respond(ACTION, INCIDENT)
    invalid = responder(["/bin/page", "{rule.__init__}"], run).respond(ACTION, INCIDENT)
    assert run.calls == []
    assert not empty.ok
    assert "no command configured" in empty.summary
    assert not invalid.ok
    assert invalid.summary.startswith("command not run: command.argv[1]")
