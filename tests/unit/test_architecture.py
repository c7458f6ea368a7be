"""The folder listing is the architecture: layers, one-way dependencies, a pure core.

Layers, lowest first::

    core                          pure: no I/O, no clock, no threads
    state                         durable state files (atomic writes, locks)
    sources, responders, reports, the edges; each may use core and state, not each other
    fleet
    runtime                       puts the edges together (daemon, service, settings files)
    cli                           the command line

A module may import its own package and the layers below it. The check is
transitive: a core module that imports a watcher module which imports ``os``
(at any depth) fails, as does a chain that climbs a layer on the way.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "watcher"

# What the core may not import, directly or through another watcher module.
CORE_FORBIDDEN = {
    "os",
    "io",
    "pathlib",
    "tomllib",
    "time",
    "subprocess",
    "psutil",
    "apprise",
    "threading",
    "socket",
    "watchdog",
    "signal",
    "shutil",
    "tempfile",
    "fcntl",
    "glob",
    "gzip",
    "multiprocessing",
    "concurrent",
    "importlib",
    "zoneinfo",
    "sys",
    "logging",
    "redis",
}

ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "state": {"core", "state"},
    "sources": {"core", "state", "sources"},
    "responders": {"core", "state", "responders"},
    "reports": {"core", "state", "reports"},
    "fleet": {"core", "state", "fleet"},  # Redis: the fleet's shared windows
    "runtime": {"core", "state", "sources", "responders", "reports", "fleet", "runtime"},
    "cli": {"core", "state", "sources", "responders", "reports", "fleet", "runtime", "cli"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@cache
def _imports(module: str) -> frozenset[str]:
    """Every module named by an import statement (TYPE_CHECKING blocks included)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against this package
                pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rsplit(".", 1)[0]
                base = f"{pkg}.{node.module}"
            found.add(base)
            for alias in node.names:  # "from watcher.core import plan" imports a module
                if f"{base}.{alias.name}" in MODULES:
                    found.add(f"{base}.{alias.name}")
    return frozenset(found)


def _watcher_deps(module: str) -> set[str]:
    return {m for m in _imports(module) if m in MODULES and m != "watcher"}


def _closure(module: str) -> dict[str, list[str]]:
    """Watcher modules reachable from ``module``, each with the chain that reaches it."""
    chains = {module: [module]}
    todo = [module]
    while todo:
        current = todo.pop()
        for dep in _watcher_deps(current):
            if dep not in chains:
                chains[dep] = [*chains[current], dep]
                todo.append(dep)
    return chains


LAYERED = sorted(m for m in MODULES if _layer(m) in ALLOWED)
CORE = sorted(m for m in MODULES if _layer(m) == "core")


def test_every_package_is_a_layer() -> None:
    unplaced = sorted(
        m
        for m in MODULES
        if m.count(".") >= 1
        and _layer(m) not in ALLOWED
        and _layer(m) not in {"__main__", "data", "default_rules", "unit", "example"}
    )
    assert not unplaced, f"modules outside every layer: {unplaced}"


@pytest.mark.parametrize("module", LAYERED)
def test_dependencies_point_down(module: str) -> None:
    allowed = ALLOWED[_layer(module)]
    bad = {
        dep: " -> ".join(chain)
        for dep, chain in _closure(module).items()
        if _layer(dep) not in allowed and _layer(dep) != ""
    }
    assert not bad, f"{module} reaches a layer above it or beside it: {bad}"


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_io_even_indirectly(module: str) -> None:
    bad: dict[str, str] = {}
    for dep, chain in _closure(module).items():
        for name in _imports(dep):
            top = name.split(".")[0]
            if top in CORE_FORBIDDEN:
                bad[name] = " -> ".join(chain)
    assert not bad, f"{module} imports I/O: {bad}"


def test_the_check_sees_an_indirect_import(tmp_path: Path) -> None:
    """A core module importing a module that imports os fails (the check can fail)."""
    MODULES["watcher.core._probe"] = tmp_path / "_probe.py"
    MODULES["watcher.core._probe2"] = tmp_path / "_probe2.py"
    (tmp_path / "_probe.py").write_text("from watcher.core import _probe2\n")
    (tmp_path / "_probe2.py").write_text("import os.path\n")
    try:
        with pytest.raises(AssertionError, match=r"os\.path"):
            test_core_imports_no_io_even_indirectly("watcher.core._probe")
    finally:
        del MODULES["watcher.core._probe"], MODULES["watcher.core._probe2"]
        _imports.cache_clear()


def test_dry_run_responder_does_not_import_real_responders() -> None:
    deps = _closure("watcher.responders.dryrun")
    for real in ("notify", "process", "postfix", "command", "killswitch"):
        assert not [d for d in deps if d.startswith(f"watcher.responders.{real}")], real
