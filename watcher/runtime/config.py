"""Reading the settings file, ``/etc/stormwatch/stormwatch.toml``.

Errors name the file, line and key (:mod:`watcher.runtime.tomlconf`).
Relative paths in the file (``rules_dirs``, ``notify.config_file``) are taken
relative to the file's directory.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from watcher.core.errors import ConfigError
from watcher.core.settings import Settings
from watcher.runtime.tomlconf import describe
from watcher.state.trust import check_config_path

DEFAULT_CONFIG = Path("/etc/stormwatch/stormwatch.toml")


def load_settings(path: Path | None) -> Settings:
    """Read ``path``; ``None`` means the default path, which may be absent."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return Settings()
        path = DEFAULT_CONFIG
    check_config_path(path, "the settings file")
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
    dirs = tuple(d if Path(d).is_absolute() else str(base / d) for d in settings.rules_dirs)
    notify = settings.notify
    if notify.config_file is not None and not Path(notify.config_file).is_absolute():
        notify = notify.model_copy(update={"config_file": str(base / notify.config_file)})
    return settings.model_copy(update={"rules_dirs": dirs, "notify": notify})
