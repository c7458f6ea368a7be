"""check-config names the header format of a file source from its last lines, and
warns about Postfix lines whose header it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.headershapes import SHAPES, life, tai64n
from watcher.cli import main
from watcher.sources.sniff import sniff_file


def test_sniff_counts_formats_of_postfix_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(life(SHAPES["year-first"], 3) + life(tai64n)) + "\n")
    s = sniff_file(log)
    assert dict(s.formats) == {"year-first": 12}
    assert [r for r, _ in s.unreadable] == ["unknown header format"] * 4
    assert s.postfix_lines == 16  # the dovecot lines are not Postfix's


def test_sniff_reads_only_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("\n".join(life(tai64n, 300) + life(SHAPES["rfc5424"], 3)) + "\n")
    s = sniff_file(log, tail=2000)
    assert s.formats["rfc5424"] > 0


def test_check_config_says_the_format_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "stormwatch.toml"
    cfg.write_text("")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(life(SHAPES["short-full"], 2) + life(tai64n)) + "\n")
    argv = ["check-config", "--config", str(cfg), "--state-dir", str(tmp_path)]
    assert main([*argv, "--source", f"file:{log}"]) == 0
    out = capsys.readouterr().out
    assert f"file:{log}: header format short-full (Mon 2026-11-30" in out
    assert "8 of the last 12 Postfix lines" in out
    assert f"WARNING: {log}: 4 of the last 12 Postfix lines have a header" in out
