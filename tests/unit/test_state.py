"""watcher.state.files: atomic, private JSON state files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from watcher.state.files import StateError, atomic_write_json, ensure_state_dir, read_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    atomic_write_json(target, {"b": [1, 2], "a": "é"})
    assert read_json(target) == {"a": "é", "b": [1, 2]}


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert read_json(tmp_path / "absent.json") is None


def test_creates_private_directories_and_file(tmp_path: Path) -> None:
    target = tmp_path / "lib" / "stormwatch" / "s.json"
    atomic_write_json(target, 1)
    assert _mode(target) == 0o600
    assert _mode(tmp_path / "lib") == 0o700
    assert _mode(tmp_path / "lib" / "stormwatch") == 0o700


def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    assert ensure_state_dir(directory) == directory
    assert _mode(directory) == 0o755


def test_ensure_state_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StateError, match="not a directory"):
        ensure_state_dir(tmp_path / "f")


def test_overwrite_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    atomic_write_json(target, {"n": 1})
    atomic_write_json(target, {"n": 2})
    assert read_json(target) == {"n": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_failed_write_keeps_old_content_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "s.json"
    atomic_write_json(target, {"n": 1})

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_json(target, {"n": 2})
    monkeypatch.undo()
    assert read_json(target) == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_unserialisable_object_leaves_old_content(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    atomic_write_json(target, [1])
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert read_json(target) == [1]


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b""])
def test_corrupt_file_error_names_the_file(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "broken.json"
    target.write_bytes(content)
    with pytest.raises(StateError, match=r"broken\.json: corrupt state file"):
        read_json(target)
