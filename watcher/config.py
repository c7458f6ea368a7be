"""The settings file, ``/etc/stormwatch/stormwatch.toml``.

Every key has a default, so an empty file (or none at the default path) is
valid; unknown keys are errors that name the file, line and key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watcher.detect import DEFAULT_CONTENT_FILTERS
from watcher.tomlconf import describe

DEFAULT_CONFIG = Path("/etc/stormwatch/stormwatch.toml")
DEFAULT_STATE_DIR = Path("/var/lib/stormwatch")


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
    user: str = ""
    sigterm_after_seconds: Annotated[float, Field(gt=0)] = 10.0


class NotifySettings(_Section):
    urls: tuple[str, ...] = ()


class CommandSettings(_Section):
    argv: tuple[str, ...] = ()
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


class Settings(_Section):
    state_dir: Path = DEFAULT_STATE_DIR
    timezone: str = Field("", description="zone of year-less syslog timestamps; '' = the host's")
    rules_dirs: tuple[Path, ...] = ()
    content_filters: tuple[str, ...] = DEFAULT_CONTENT_FILTERS
    correlate: CorrelateSettings = CorrelateSettings()
    postfix: PostfixSettings = PostfixSettings()
    fetchmail: FetchmailSettings = FetchmailSettings()
    notify: NotifySettings = NotifySettings()
    command: CommandSettings = CommandSettings()


class ConfigError(Exception):
    """The settings file is wrong; the message says where and why."""


def load_settings(path: Path | None) -> Settings:
    """Read ``path``; ``None`` means the default path, which may be absent."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Settings()
        path = DEFAULT_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, text, str(path))) from exc
    base = path.parent
    dirs = tuple(d if d.is_absolute() else base / d for d in settings.rules_dirs)
    return settings.model_copy(update={"rules_dirs": dirs})
