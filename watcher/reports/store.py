"""Incident folders: ``<state_dir>/incidents/<id>/`` with report.md, report.json,
timeline.svg and evidence.log, written atomically; and reading them back."""

from __future__ import annotations

import json
import os
from pathlib import Path

from watcher.reports import codec, markdown, svg
from watcher.reports.model import IncidentReport
from watcher.state.files import DIR_MODE, atomic_write_bytes, atomic_write_json, ensure_state_dir

FILES = ("report.md", "report.json", "timeline.svg", "evidence.log")


def render_evidence(data: IncidentReport) -> str:
    """``evidence.log``: the matching lines, verbatim, in order."""
    return "".join(f"{m.where.text}\n" for m in data.matches)


def write_incident(folder: Path, data: IncidentReport) -> list[Path]:
    """Write the incident folder (mode 0700; files 0600), each file atomically.

    Returns the paths written: report.md, report.json, timeline.svg, evidence.log.
    Writing again replaces them (a later, fuller picture of the same incident).
    """
    ensure_state_dir(folder)
    os.chmod(folder, DIR_MODE)
    md_path, json_path, svg_path, ev_path = (folder / name for name in FILES)
    atomic_write_bytes(ev_path, render_evidence(data).encode())
    atomic_write_bytes(svg_path, svg.render_svg(data).encode())
    atomic_write_json(json_path, codec.to_json(data))
    atomic_write_bytes(md_path, markdown.render_markdown(data).encode())
    return [md_path, json_path, svg_path, ev_path]


def load_incident(folder: Path) -> IncidentReport:
    """An incident folder's ``report.json`` back as data. ValueError/OSError if unusable."""
    path = folder / "report.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    try:
        return codec.from_json(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def list_incidents(incidents_dir: Path) -> list[tuple[Path, IncidentReport | None, str]]:
    """Every folder under ``incidents_dir``, newest first: ``(folder, data or None, error)``.

    A folder without a readable report (e.g. only the ``latch.json`` that
    ``rearm`` archives) is listed with ``None`` and the reason.
    """
    if not incidents_dir.is_dir():
        return []
    out: list[tuple[Path, IncidentReport | None, str]] = []
    for folder in sorted((p for p in incidents_dir.iterdir() if p.is_dir()), reverse=True):
        try:
            out.append((folder, load_incident(folder), ""))
        except FileNotFoundError:
            out.append((folder, None, "no report.json"))
        except (OSError, ValueError) as exc:
            out.append((folder, None, str(exc)))
    return out
