"""The settings: what ``/etc/stormwatch/stormwatch.toml`` may hold. Pure: no file is read here.

Every key has a default, so an empty file (or none at the default path) is
valid; unknown keys are errors. Reading the file, and errors that name its
line, are :mod:`watcher.runtime.config`'s job. Paths are kept as text (the
core does no file I/O); the edges make ``Path`` objects of them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

DEFAULT_STATE_DIR = "/var/lib/stormwatch"

# amavisd-new and friends: what a bounce handed to them has not left yet.
DEFAULT_CONTENT_FILTERS: tuple[str, ...] = (
    "127.0.0.1:10024",
    "127.0.0.1:10026",
    "[::1]:10024",
    "[::1]:10026",
)


def _path_text(value: Any) -> Any:
    """A ``Path`` (anything with ``__fspath__``) as text; other values as they are."""
    fspath = getattr(value, "__fspath__", None)
    return fspath() if callable(fspath) else value


PathText = Annotated[str, BeforeValidator(_path_text)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorrelateSettings(_Section):
    max_open: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    ttl_seconds: Annotated[float, Field(gt=0)] = 86_400.0


class PostfixSettings(_Section):
    config_directory: str = "/etc/postfix"
    freeze_transports: tuple[str, ...] = Field(
        ("smtp",),
        description="transports to defer when the tripping rule saw no outbound delivery",
    )


class FetchmailSettings(_Section):
    user: str = Field("", description="only stop fetchmail processes of this user; '' = any")
    sigterm_after_seconds: Annotated[float, Field(gt=0)] = Field(
        10.0,
        description="seconds to wait after SIGINT before SIGTERM, and again after SIGTERM",
    )
    kill_after_seconds: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description=(
            "SIGKILL what still runs this many seconds after SIGTERM; unset = never. Off by"
            " default: SIGKILL skips fetchmail's cleanup (lock file, UID list) and a process"
            " that survives SIGTERM is stuck or not fetchmail at all: a human should look"
        ),
    )


class NotifySettings(_Section):
    urls: tuple[str, ...] = Field((), description="apprise URLs to page")
    config_file: PathText | None = Field(None, description="an apprise config file (text or YAML)")
    reminder_minutes: Annotated[float, Field(ge=0)] = Field(
        30.0, description="remind every N minutes while tripped; 0 = no reminders"
    )
    retries: Annotated[int, Field(ge=0, le=20)] = Field(
        3, description="retries per target after a failed send"
    )
    backoff_seconds: Annotated[float, Field(gt=0)] = Field(
        2.0, description="wait before the first retry; doubles for each retry after it"
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        10.0, description="per-send timeout (connect and read) for each target"
    )


class CommandSettings(_Section):
    argv: tuple[str, ...] = Field(
        (),
        description=(
            "program and arguments, no shell; placeholders {rule} {count} {threshold} {window}"
            " {incident} {trip_time} {first_time} {host} {trip_line} {domains}"
        ),
    )
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


class MetricsSettings(_Section):
    enabled: bool = Field(default=False, description="serve Prometheus metrics")
    address: str = Field(default="127.0.0.1", description="listen address (loopback by default)")
    port: Annotated[int, Field(ge=1, le=65535)] = 9158
    allow_remote: bool = Field(
        default=False, description="allow a non-loopback address (put a firewall in front)"
    )


class FleetSettings(_Section):
    """Shared windows on Redis: rules with ``shared = true`` count across every watcher
    with the same ``url`` and ``name``. Empty ``url``: no fleet, every window is local."""

    url: str = Field(
        "",
        pattern=r"^(|rediss?://\S+)$",
        description="redis://[:password@]host:port/db, or rediss:// for TLS; '' = no fleet",
    )
    password_file: PathText | None = Field(
        None, description="a file holding Redis's password (readable by its owner only)"
    )
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = Field(
        "default", description="watchers with the same url and name share their windows"
    )
    host: Annotated[str, Field(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,127})?$")] = Field(
        "", description="this watcher's name in the fleet; '' = the machine's host name"
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="connect and per-command timeout; slower is an outage"
    )
    retry_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="wait between attempts to reach Redis again after an outage"
    )
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="re-read the fleet's counts this often while this host is quiet"
    )
    queue_size: Annotated[int, Field(ge=100, le=10_000_000)] = Field(
        100_000, description="matches waiting to be shared; beyond it they stay local only"
    )
    on_trip: Literal["page", "ladder"] = Field(
        "page",
        description=(
            "when another host trips: 'page' says so and keeps watching; 'ladder' also trips"
            " the same rule here, with its actions (contain-offender for the same offender)"
        ),
    )


class Settings(_Section):
    state_dir: PathText = DEFAULT_STATE_DIR
    timezone: str = Field("", description="zone of year-less syslog timestamps; '' = the host's")
    rules_dirs: tuple[PathText, ...] = ()
    bundled_rules: bool = Field(
        default=True, description="load the bundled default rules before rules_dirs"
    )
    content_filters: tuple[str, ...] = DEFAULT_CONTENT_FILTERS
    local_domains: tuple[str, ...] = Field(
        (),
        description=(
            "domains delivered on this host, for rules with destination = 'not-local'; run adds"
            " Postfix's mydestination and virtual_mailbox_domains, and the log teaches more"
        ),
    )
    correlate: CorrelateSettings = CorrelateSettings()
    postfix: PostfixSettings = PostfixSettings()
    fetchmail: FetchmailSettings = FetchmailSettings()
    notify: NotifySettings = NotifySettings()
    command: CommandSettings = CommandSettings()
    metrics: MetricsSettings = MetricsSettings()
    fleet: FleetSettings = FleetSettings()
