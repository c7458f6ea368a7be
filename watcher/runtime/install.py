"""``stormwatch install-unit``: the systemd unit with this host's paths, and a settings file."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path

from watcher.core.settings import Settings
from watcher.runtime.config import DEFAULT_CONFIG

log = logging.getLogger(__name__)

UNIT_NAME = "stormwatch.service"
PROGRAM = "/usr/local/bin/stormwatch"
DEFAULT_RW = "ReadWritePaths=/etc/postfix /var/spool/postfix"


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / name


def unit_text(program: str, config_directory: str, queue_directory: str) -> str:
    """The bundled unit, pointed at ``program`` and this Postfix's directories."""
    text = _package_file("watcher.unit", UNIT_NAME).read_text(encoding="utf-8")
    text = text.replace(PROGRAM, program)
    paths = f"ReadWritePaths={config_directory} {queue_directory}"
    return text.replace(DEFAULT_RW, paths)


def find_program() -> str:
    """The stormwatch executable that is running now (or on PATH)."""
    found = shutil.which("stormwatch")
    if found:
        return str(Path(found).resolve())
    return str(Path(sys.argv[0]).resolve())


def install(
    settings: Settings,
    queue_directory: str,
    *,
    dest: Path,
    program: str | None = None,
    config: Path = DEFAULT_CONFIG,
    write_config: bool = True,
) -> list[str]:
    """Write the unit (and the example settings if there are none); what was done."""
    program = program or find_program()
    done: list[str] = []
    if program.startswith(("/root/", "/home/")):
        done.append(
            f"WARNING: {program} is under /root or /home, which the unit hides "
            "(ProtectHome=yes): install stormwatch system-wide (see the README)"
        )
    text = unit_text(program, settings.postfix.config_directory, queue_directory)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / UNIT_NAME
    tmp = target.with_name(f".{UNIT_NAME}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    done.append(f"wrote {target} (ExecStart={program} run)")
    if write_config and not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_package_file("watcher.example", "stormwatch.toml.example"), config)
        os.chmod(config, 0o644)
        done.append(f"wrote {config} (every key at its default, commented)")
    elif write_config:
        done.append(f"kept the existing {config}")
    done.append("next: systemctl daemon-reload && systemctl enable --now stormwatch")
    return done
