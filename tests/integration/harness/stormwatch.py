"""``stormwatch`` itself as the tests run it: real processes, its latch as it is on disk.

:class:`Watchers` starts ``stormwatch run`` processes (``python -m watcher run``),
each writing its output to ``watcher-N.out`` in a folder, and kills what is left
at the end; :func:`cli` runs one command to its end; :func:`latch` reads the
state directory's ``latch.json`` (not tripped when there is none); :func:`config_for`
writes the settings of a watcher on a private Postfix that pages a webhook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def latch(state: Path) -> dict[str, Any]:
    path = state / "latch.json"
    return json.loads(path.read_text()) if path.exists() else {"tripped": False}


def actions(state: Path) -> dict[str, dict[str, Any]]:
    """The latch's action outcomes by kind (the last of each)."""
    return {a["kind"]: a for a in latch(state).get("actions", ())}


def config_for(root: Path, config_directory: Path, apprise_url: str) -> tuple[Path, Path]:
    """``(state_dir, settings file)`` under ``root``: that Postfix, that page target."""
    state = root / "state"
    config = root / "stormwatch.toml"
    config.write_text(
        f'state_dir = "{state}"\n'
        f'[postfix]\nconfig_directory = "{config_directory}"\n'
        f'[notify]\nurls = ["{apprise_url}"]\ntimeout_seconds = 5\nretries = 1\n'
    )
    return state, config


class Watchers:
    """``stormwatch run`` processes, their output in ``folder/watcher-N.out``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = open(self.folder / f"watcher-{len(self.procs)}.out", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        out.close()  # the child has its own copy
        self.procs.append(proc)
        return proc

    def output(self, n: int = 0) -> str:
        return (self.folder / f"watcher-{n}.out").read_text(errors="replace")

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
