"""The incident timeline drawn by a real SVG renderer (``rsvg-convert``, librsvg2-bin):
it renders without complaint, and the picture holds the bars, the trip and the threshold
in their colours on a white page."""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.integration.harness.requires import find_program, unavailable
from watcher.core.parse import Parser
from watcher.core.pipeline import Pipeline
from watcher.core.settings import Settings
from watcher.reports import build, store, svg
from watcher.runtime.rulefiles import load_rules

pytestmark = pytest.mark.integration

TOKYO = ZoneInfo("Asia/Tokyo")
RGB = tuple[int, int, int]


def _rgb(colour: str) -> RGB:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def rsvg_convert() -> str:
    path = find_program("rsvg-convert")
    if path is None:
        unavailable("needs rsvg-convert (apt-get install librsvg2-bin)")
    return path


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """A tiny PNG reader for 8-bit RGB/RGBA (what rsvg-convert writes): (width, height, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0), body
            assert colour_type in (2, 6), body
            channels = 4 if colour_type == 6 else 3
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [_rgb_row(r, channels) for r in rows]


def _rgb_row(row: bytes, channels: int) -> bytes:
    if channels == 3:
        return row
    # rsvg writes straight alpha; the page has an opaque white background everywhere
    return b"".join(row[i : i + 3] for i in range(0, len(row), 4))


def colours(rows: list[bytes]) -> Counter[RGB]:
    c: Counter[RGB] = Counter()
    for row in rows:
        c.update(zip(row[0::3], row[1::3], row[2::3], strict=True))
    return c


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    exe = rsvg_convert()
    rules = [r.rule for r in load_rules()]
    parser = Parser(reference=datetime(2011, 12, 31, tzinfo=UTC), tz=TOKYO)
    pipeline = Pipeline.build(rules, parser, content_filters=Settings().content_filters)
    text = resources.files("watcher.data").joinpath("demo-incident.log").read_text("utf-8")
    pipeline.run_text(text, "demo-incident.log")
    data = build.from_pipeline(pipeline, "backscatter", TOKYO)
    folder = tmp_path_factory.mktemp("incident")
    store.write_incident(folder, data)
    out = folder / "timeline.png"
    done = subprocess.run(
        [exe, "--format", "png", "--output", str(out), "--", str(folder / "timeline.svg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no warning about the SVG either
    return out, out.read_bytes()


def test_png_has_the_svg_size_and_is_not_trivial(png: tuple[Path, bytes]) -> None:
    path, data = png
    assert len(data) > 10_000, f"{path}: suspiciously small ({len(data)} bytes)"
    width, height, _ = read_png(data)
    assert (width, height) == (svg.SVG_W, svg.SVG_H)


def test_png_shows_bars_trip_and_threshold_on_white(png: tuple[Path, bytes]) -> None:
    _, data = png
    width, height, rows = read_png(data)
    seen = colours(rows)
    total = width * height
    assert len(seen) > 20  # text is antialiased: many shades, not one flat colour
    white = seen[(255, 255, 255)]
    assert white > total * 0.4, "background should be white"
    bar = seen[_rgb(svg._BAR)]
    assert bar > total * 0.05, f"bars: {bar} px of {total}"
    trip = seen[_rgb(svg._TRIP)]
    assert trip > 200, f"trip mark and label: {trip} px"
    threshold = seen[_rgb(svg._THRESH)]
    assert threshold > 200, f"threshold line and label: {threshold} px"
    # the bars stand on the plot's floor: bar colour in the row just above the baseline
    base_row = svg._TOP + (svg.SVG_H - svg._TOP - svg._BOTTOM) - 3
    row = rows[base_row]
    pixels = list(zip(row[0::3], row[1::3], row[2::3], strict=True))
    assert pixels.count(_rgb(svg._BAR)) > (svg.SVG_W - svg._LEFT - svg._RIGHT) * 0.5
