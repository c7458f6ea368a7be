"""``timeline.svg``: matching lines per bucket of log time around the trip. Pure.

Plain SVG 1.1 with no script, no external reference and every text escaped,
so any viewer (and rsvg-convert) shows it as drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr

from watcher.core.events import MICROS
from watcher.core.text import visible
from watcher.core.times import from_iso, to_datetime
from watcher.reports.model import IncidentReport, utc_offset, zone

MAX_BUCKETS = 180
PAD_BEFORE, PAD_AFTER = 3, 1  # empty buckets shown around the matches

SVG_W, SVG_H = 960, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 92, 96, 66
_FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
_BAR, _TRIP, _STOP, _THRESH = "#4a78b0", "#c62828", "#2e7d32", "#e07b00"
# a white outline under text drawn over bars keeps it readable
_HALO = {"stroke": "#ffffff", "stroke_width": "3", "paint_order": "stroke"}


def _nice_step(top: float) -> float:
    """A 1/2/5 x 10^k step that cuts ``top`` into at most 5 parts."""
    raw = max(top, 1e-9) / 5
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw)


def _fmt_num(v: float) -> str:
    return f"{v:,.0f}" if v == int(v) else f"{v:.2g}" if v < 1 else f"{v:.1f}"


@dataclass(frozen=True, slots=True)
class Chart:
    """The buckets a timeline shows (``start_us``: the first bucket's start)."""

    start_us: int
    bucket_us: int
    counts: tuple[int, ...]
    before: int = 0  # matches earlier than the chart
    after: int = 0  # matches later than the chart
    labels: tuple[str, ...] = field(default_factory=tuple)


def chart_buckets(data: IncidentReport, bucket_seconds: int = 10) -> Chart:
    """Matches per bucket, aligned on multiples of ``bucket_seconds``, from the first
    match to the last (and the trip), at most ``MAX_BUCKETS`` around the trip."""
    inc = data.incident
    b = bucket_seconds * MICROS
    times = [m.where.time for m in data.matches]
    trip_us = from_iso(inc.trip.time) if inc.trip else None
    points = times + ([trip_us] if trip_us is not None else [])
    if not points:
        return Chart(0, b, (0,))
    # a little quiet before and after: where the storm starts and ends shows
    lo, hi = min(points) // b - PAD_BEFORE, max(points) // b + PAD_AFTER
    if hi - lo + 1 > MAX_BUCKETS:
        centre = (trip_us if trip_us is not None else times[0]) // b
        first = lo
        lo = max(lo, centre - MAX_BUCKETS // 3)
        hi = min(hi, lo + MAX_BUCKETS - 1)
        lo = max(first, hi - MAX_BUCKETS + 1)
    counts = [0] * (hi - lo + 1)
    before = after = 0
    for t in times:
        i = t // b - lo
        if i < 0:
            before += 1
        elif i >= len(counts):
            after += 1
        else:
            counts[i] += 1
    return Chart(lo * b, b, tuple(counts), before, after)


def _t(x: float, y: float, text: str, *, cls: str, anchor: str = "start", **style: str) -> str:
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in style.items())
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>'
        f"{_xml_escape(visible(text))}</text>"
    )


def render_svg(data: IncidentReport, *, bucket_seconds: int = 10) -> str:
    """``timeline.svg``: matching lines per ``bucket_seconds`` around the trip.

    Bars: one ``<rect class="bar">`` per bucket (``data-start``/``data-count``).
    The threshold is drawn as the rule's *rate* at the bucket's scale
    (``trip_at * bucket / window``): a bar above the dashed line is faster than
    the rule allows. A red line marks the trip, a green one the outflow's stop.
    """
    inc = data.incident
    tz = zone(data)
    chart = chart_buckets(data, bucket_seconds)
    n = len(chart.counts)
    pw, ph = SVG_W - _LEFT - _RIGHT, SVG_H - _TOP - _BOTTOM
    base_y = _TOP + ph
    bw = pw / n
    rate = (
        inc.threshold * bucket_seconds / inc.window_seconds
        if inc.threshold and inc.window_seconds
        else None
    )
    top = max([*chart.counts, rate or 0.0, 1.0])
    step = _nice_step(top)
    y_max = step * math.ceil(top / step - 1e-9)
    if y_max < top * 1.05:
        y_max += step

    def x_of(t_us: int) -> float:
        return _LEFT + (t_us - chart.start_us) / chart.bucket_us * bw

    def y_of(v: float) -> float:
        return base_y - v / y_max * ph

    def hms(t_us: int, fmt: str = "%H:%M:%S") -> str:
        return f"{to_datetime(t_us, tz):{fmt}}"

    first_day = hms(chart.start_us, "%Y-%m-%d")
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_W}" height="{SVG_H}" '
        f'viewBox="0 0 {SVG_W} {SVG_H}" font-family={quoteattr(_FONT)} font-size="12">',
        f"<title>{_xml_escape(visible(f'{inc.rule} on {inc.host}: timeline'))}</title>",
        f'<rect class="background" x="0" y="0" width="{SVG_W}" height="{SVG_H}" fill="#ffffff"/>',
        _t(
            _LEFT,
            22,
            f"{inc.rule}"
            + (f" on {inc.host}" if inc.host else "")
            + f": {data.matches_total:,} matching lines"
            + (" (replay)" if data.mode == "replay" else ""),
            cls="title",
            font_size="16",
            font_weight="bold",
        ),
        _t(
            _LEFT,
            40,
            f"matching lines per {bucket_seconds} s, {first_day}, log time "
            f"({data.tz}, {utc_offset(tz, datetime.fromtimestamp(chart.start_us / MICROS, UTC))})"
            + (
                f"; not shown: {chart.before:,} earlier, {chart.after:,} later"
                if chart.before or chart.after
                else ""
            ),
            cls="subtitle",
            fill="#444444",
        ),
    ]
    # legend
    lx, ly = _LEFT, 62
    out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="10" fill="{_BAR}"/>')
    out.append(_t(lx + 16, ly, f"matches per {bucket_seconds} s", cls="legend"))
    lx += 150
    if rate is not None:
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{_THRESH}" '
            'stroke-width="2" stroke-dasharray="6,4"/>'
        )
        out.append(
            _t(
                lx + 30,
                ly,
                f"trip rate: {inc.threshold} per {inc.window_seconds:g} s "
                f"= {_fmt_num(rate)} per {bucket_seconds} s (bars above it are faster)",
                cls="legend",
            )
        )
        lx += 420
    if inc.trip is not None:
        out.append(
            f'<line x1="{lx}" y1="{ly - 10}" x2="{lx}" y2="{ly + 2}" stroke="{_TRIP}" '
            'stroke-width="2"/>'
        )
        out.append(_t(lx + 6, ly, "trip", cls="legend"))
        lx += 50
    if data.outflow_stopped_at:
        out.append(
            f'<line x1="{lx}" y1="{ly - 10}" x2="{lx}" y2="{ly + 2}" stroke="{_STOP}" '
            'stroke-width="2"/>'
        )
        out.append(_t(lx + 6, ly, "outflow stopped", cls="legend"))
    # y grid and labels
    v = 0.0
    while v <= y_max + 1e-9:
        y = y_of(v)
        out.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + pw}" y2="{y:.1f}" '
            f'stroke="{"#888888" if v == 0 else "#e3e3e3"}" stroke-width="1"/>'
        )
        out.append(_t(_LEFT - 6, y + 4, _fmt_num(v), cls="ylabel", anchor="end"))
        v += step
    out.append(
        _t(
            16,
            _TOP + ph / 2,
            f"matches per {bucket_seconds} s",
            cls="axis-title",
            anchor="middle",
            transform=f"rotate(-90 16 {_TOP + ph / 2:.1f})",
        )
    )
    # bars
    show_counts = bw >= 14
    for i, c in enumerate(chart.counts):
        t0 = chart.start_us + i * chart.bucket_us
        x = _LEFT + i * bw
        h = c / y_max * ph
        gap = 1.0 if bw > 3 else 0.0
        out.append(
            f'<rect class="bar" x="{x + gap:.2f}" y="{base_y - h:.2f}" '
            f'width="{max(bw - 2 * gap, 0.5):.2f}" height="{h:.2f}" fill="{_BAR}" '
            f'data-start="{_xml_escape(hms(t0))}" data-count="{c}">'
            f"<title>{hms(t0)}-{hms(t0 + chart.bucket_us)}: {c}</title></rect>"
        )
        if show_counts and c:
            out.append(_t(x + bw / 2, base_y - h - 3, str(c), cls="count", anchor="middle",
                          font_size="9", fill="#333333"))  # fmt: skip
    # x ticks: a label every k buckets, k a round number of seconds, >= ~80 px apart
    k = next(
        (m for m in (1, 2, 3, 6, 12, 30, 60, 180, 360) if m * bw >= 80),
        max(1, math.ceil(80 / bw)),
    )
    fmt = "%H:%M:%S" if k * bucket_seconds % 60 else "%H:%M"
    for i in range(0, n + 1):
        t0 = chart.start_us + i * chart.bucket_us
        if (t0 // chart.bucket_us) % k:
            continue
        x = _LEFT + i * bw
        out.append(
            f'<line class="tick" x1="{x:.1f}" y1="{base_y}" x2="{x:.1f}" y2="{base_y + 5}" '
            'stroke="#888888"/>'
        )
        out.append(_t(x, base_y + 18, hms(t0, fmt), cls="xlabel", anchor="middle"))
    out.append(
        _t(
            _LEFT + pw / 2,
            SVG_H - 14,
            f"log time ({data.tz})",
            cls="axis-title",
            anchor="middle",
        )
    )
    # threshold: the rule's rate at this bucket's scale
    if rate is not None:
        y = y_of(rate)
        out.append(
            f'<line class="threshold" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + pw}" y2="{y:.1f}" '
            f'stroke="{_THRESH}" stroke-width="2" stroke-dasharray="6,4"/>'
        )
        # labelled in the right margin, where no bar is
        for dy, text in ((-19, "trip rate"), (-6, f"{_fmt_num(rate)} / {bucket_seconds} s")):
            out.append(
                _t(_LEFT + pw + 6, y + dy, text, cls="threshold-label", fill=_THRESH,
                   font_weight="bold", font_size="11")
            )  # fmt: skip
    # marks: the trip and the stop
    marks: list[tuple[str, str, int, str]] = []
    if inc.trip is not None:
        t = from_iso(inc.trip.time)
        marks.append(
            (
                "trip",
                _TRIP,
                t,
                f"TRIPPED {hms(t)} ({inc.trip.count} in {inc.window_seconds:g} s)",
            )
        )
    if data.outflow_stopped_at:
        t = from_iso(data.outflow_stopped_at)
        marks.append(("stop", _STOP, t, f"outflow stopped {hms(t)}"))
    labels: list[str] = []
    for j, (cls, colour, t, label) in enumerate(marks):
        x = min(max(x_of(t), _LEFT), _LEFT + pw)
        out.append(
            f'<line class="{cls}" x1="{x:.1f}" y1="{_TOP - 8}" x2="{x:.1f}" y2="{base_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        # the label on a white box (drawn after every line, so no line crosses it)
        right = x > _LEFT + pw * 0.6
        y = _TOP + 6 + 18 * j
        width = len(label) * 7.4 + 8  # bold 12 px DejaVu Sans: about 7.4 px a character
        box_x = x - 1 - width if right else x + 1
        labels.append(
            f'<rect class="label-box" x="{box_x:.1f}" y="{y - 13}" width="{width:.1f}" '
            'height="17" fill="#ffffff" fill-opacity="0.9"/>'
        )
        labels.append(
            _t(
                x + (-5 if right else 5),
                y,
                label,
                cls=f"{cls}-label",
                anchor="end" if right else "start",
                fill=colour,
                font_weight="bold",
            )
        )
    out += labels
    if not data.matches:
        out.append(_t(_LEFT + pw / 2, _TOP + ph / 2, "no matching lines", cls="empty",
                      anchor="middle"))  # fmt: skip
    out.append("</svg>")
    return "\n".join(out) + "\n"
