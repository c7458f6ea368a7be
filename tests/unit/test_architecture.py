"""The core stays pure: no I/O modules imported by the pipeline's stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = ["events", "parse", "scanner", "correlate", "window", "detect", "decide", "pipeline", "plan"]
IO_MODULES = {
    "os",
    "time",
    "subprocess",
    "psutil",
    "apprise",
    "threading",
    "socket",
    "watchdog",
    "signal",
}
PKG = Path(__file__).resolve().parents[2] / "watcher"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io(module: str) -> None:
    bad = _imports(PKG / "core" / f"{module}.py") & IO_MODULES
    assert not bad, f"watcher/core/{module}.py imports {sorted(bad)}"


def test_dry_run_responder_does_not_import_real_responders() -> None:
    imported = ast.dump(ast.parse((PKG / "responders" / "dryrun.py").read_text()))
    for real in ("notify", "process", "postfix", "command"):
        assert f"watcher.responders.{real}" not in imported
