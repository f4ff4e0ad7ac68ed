"""Inline SVG charts for the printable report: horizontal bars and the online-over-time line (pure).

Colours and sizes are SVG presentation attributes, not CSS, so a chart draws the same in a page with
no style sheet, in print, and under a Content-Security-Policy that allows no inline style. Every
chart is an ``<svg role="img">`` with a ``<title>`` naming it, and every number it shows is also in
a table beside it (the charts are for the eye; the tables are for screen readers and for copying).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from html import escape

from reporting.report import Point

WIDTH = 640  # the line chart's
BARS_WIDTH = 440
LABEL_W = 140
BAR_AREA = 240
ROW = 24
BAR = 16
PALETTE = ("#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#1b7c83", "#bc4c00", "#57606a")
INK = "#1b1f24"
MUTED = "#57606a"
GRID = "#d0d7de"
MAX_POINTS = 720


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _clip(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bars(title: str, data: Mapping[str, float], *, unit: str = "") -> str:
    """A horizontal bar chart, one bar per item, largest scale = the largest value.

    Args:
        title: what the chart shows (its accessible name).
        data: item → value, in the order to draw.
        unit: appended to each value's label (e.g. ``" s"``).

    Returns:
        An ``<svg>`` element, or a short paragraph when there is nothing to draw.
    """
    if not data:
        return f'<p class="empty">{escape(title)}: none</p>'
    top = max(max(data.values()), 1)
    height = ROW * len(data) + 8
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {BARS_WIDTH} {height}" '
        f'width="{BARS_WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (item, value) in enumerate(data.items()):
        y = 4 + i * ROW
        width = 0 if value <= 0 else max(2, round(BAR_AREA * value / top))
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + BAR - 3}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{escape(_clip(item))}</text>'
            f'<rect x="{LABEL_W}" y="{y}" width="{width}" height="{BAR}" rx="2" fill="{colour}">'
            f"<title>{escape(item)}: {_number(value)}{escape(unit)}</title></rect>"
            f'<text x="{LABEL_W + width + 6}" y="{y + BAR - 3}" font-size="13" '
            f'fill="{MUTED}">{_number(value)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most ``limit`` points: each kept point is the highest of its stretch (peaks survive)."""
    if len(points) <= limit:
        return list(points)
    step = len(points) / limit
    kept: list[Point] = []
    for i in range(limit):
        stretch = points[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]
        kept.append(max(stretch, key=lambda p: p.online))
    return kept


def _clock(ms: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%d %b %H:%M")


def line(title: str, points: Sequence[Point], *, zone: tzinfo = UTC) -> str:
    """People online over time: total, venue and remote, with the time axis in ``zone``.

    Returns:
        An ``<svg>`` element, or a short paragraph when there are fewer than two samples.
    """
    if len(points) < 2:
        return f'<p class="empty">{escape(title)}: not enough samples</p>'
    drawn = thin(points)
    left, right, top, bottom, height = 48, WIDTH - 12, 12, 200, 240
    first, last = drawn[0].at, drawn[-1].at
    span = max(1, last - first)
    peak = max(max(p.online for p in drawn), 1)

    def xy(at: int, value: int) -> str:
        x = left + (right - left) * (at - first) / span
        y = bottom - (bottom - top) * value / peak
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg class="chart line" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{GRID}"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="{GRID}"/>',
        f'<line x1="{left}" y1="{top}" x2="{right}" y2="{top}" stroke="{GRID}" '
        'stroke-dasharray="4 4"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="12" '
        f'fill="{MUTED}">{peak}</text>',
        f'<text x="{left - 6}" y="{bottom + 4}" text-anchor="end" font-size="12" '
        f'fill="{MUTED}">0</text>',
        f'<text x="{left}" y="{bottom + 18}" font-size="12" fill="{MUTED}">'
        f"{escape(_clock(first, zone))}</text>",
        f'<text x="{right}" y="{bottom + 18}" text-anchor="end" font-size="12" '
        f'fill="{MUTED}">{escape(_clock(last, zone))}</text>',
    ]
    series = (("online", PALETTE[0], 2.5), ("venue", PALETTE[1], 1.5), ("remote", PALETTE[2], 1.5))
    for i, (name, colour, stroke) in enumerate(series):
        coords = " ".join(xy(p.at, getattr(p, name)) for p in drawn)
        parts.append(
            f'<polyline class="{name}" points="{coords}" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke}" stroke-linejoin="round"/>'
        )
        x = left + 10 + i * 110
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{height - 9}" font-size="12" fill="{INK}">{name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
