"""Inline SVG charts for the report: no script, no network, readable when printed.

``score_chart`` draws one dimension's overall score over the last runs with its amber and green threshold
bands; ``count_chart`` draws grouped bars of counts per run (records landed, golden customers changed …).
Both return markup that Jinja inserts with ``|safe``: every text inside is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_GREEN, _AMBER, _RED = "#e3f9e5", "#fff3c4", "#ffe3e3"
_LINE = "#2680c2"
SERIES_COLOURS = ("#2680c2", "#f0b429", "#3ebd93", "#ef4e4e", "#9446ed", "#829ab1")


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _ends(labels: Sequence[str], x0: float, x1: float, y: float) -> list[str]:
    """The first and last run's label under the x axis (the runs between are evenly spaced)."""
    out = []
    if labels:
        out.append(f'<text x="{x0}" y="{y}" font-size="10" fill="#627d98">{escape(labels[0])}</text>')
    if len(labels) > 1:
        out.append(f'<text x="{x1}" y="{y}" font-size="10" text-anchor="end" fill="#627d98">'
                   f"{escape(labels[-1])}</text>")
    return out


def score_chart(chart_id: str, title: str, labels: Sequence[str], scores: Sequence[float | None],
                green: float, amber: float, width: int = 320, height: int = 150) -> str:
    """Line chart 0–100 with red/amber/green bands; a run without a score leaves a gap."""
    left, right, top, bottom = 30, 8, 22, 20
    w, h = width - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + h * (1 - max(0.0, min(100.0, v)) / 100)

    def x(i: int) -> float:
        return left + (w * i / (len(labels) - 1) if len(labels) > 1 else w / 2)

    parts = [f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="14" font-size="12" font-weight="600" fill="#243b53">{escape(title)}</text>',
             f'<rect x="{left}" y="{y(100):.1f}" width="{w}" height="{y(green) - y(100):.1f}" fill="{_GREEN}"/>',
             f'<rect x="{left}" y="{y(green):.1f}" width="{w}" height="{y(amber) - y(green):.1f}" fill="{_AMBER}"/>',
             f'<rect x="{left}" y="{y(amber):.1f}" width="{w}" height="{y(0) - y(amber):.1f}" fill="{_RED}"/>']
    for tick in (0, 50, 100):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="#627d98">{tick}</text>')
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, s in enumerate(scores):
        if s is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(s):.1f}")
    if segment:
        segments.append(segment)
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{_LINE}" stroke-width="2"/>')
    for i, s in enumerate(scores):
        if s is not None:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(s):.1f}" r="3" fill="{_LINE}">'
                         f"<title>{escape(labels[i])}: {_fmt(s)}</title></circle>")
    parts.extend(_ends(labels, left, left + w, height - 5))
    last = next((s for s in reversed(scores) if s is not None), None)
    if last is not None:
        parts.append(f'<text x="{left + w}" y="14" font-size="12" text-anchor="end" fill="#102a43">'
                     f"{_fmt(last)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def count_chart(chart_id: str, title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
                width: int = 660, height: int = 170) -> str:
    """Grouped bars per run, one colour per series, with a legend; the scale starts at zero."""
    left, right, top, bottom = 46, 8, 36, 20
    w, h = width - left - right, height - top - bottom
    top_value = max([v for vs in series.values() for v in vs] + [1])
    n, k = max(len(labels), 1), max(len(series), 1)
    slot = w / n
    bar = min(36.0, max(1.0, slot * 0.8 / k))  # a single run must not fill the chart with one block
    parts = [f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="14" font-size="12" font-weight="600" fill="#243b53">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#bcccdc"/>',
             f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end" fill="#627d98">'
             f"{int(top_value):,}</text>",
             f'<text x="{left - 4}" y="{top + h}" font-size="10" text-anchor="end" fill="#627d98">0</text>']
    lx = left
    for j, name in enumerate(series):
        colour = SERIES_COLOURS[j % len(SERIES_COLOURS)]
        parts.append(f'<rect x="{lx}" y="22" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="31" font-size="11" fill="#334e68">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    for j, (name, values) in enumerate(series.items()):
        colour = SERIES_COLOURS[j % len(SERIES_COLOURS)]
        for i, v in enumerate(values):
            bh = h * (v / top_value) if top_value else 0
            bx = left + slot * i + (slot - bar * k) / 2 + bar * j
            parts.append(f'<rect x="{bx:.1f}" y="{top + h - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                         f'fill="{colour}"><title>{escape(labels[i])} — {escape(name)}: {int(v):,}</title></rect>')
    parts.extend(_ends(labels, left, left + w, height - 5))
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(chart_id: str, title: str, rows: Sequence[tuple[str, float]], width: int = 420,
               colour: str = _LINE, centered: bool = False) -> str:
    """Horizontal bars, one per row; ``centered`` draws a pyramid / funnel (bars centred on the axis)."""
    row_h, top, label_w = 22, 22, 190
    height = top + row_h * max(len(rows), 1) + 6
    w = width - label_w - 60
    biggest = max([v for _, v in rows] + [1])
    parts = [f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="14" font-size="12" font-weight="600" fill="#243b53">{escape(title)}</text>']
    for i, (label, v) in enumerate(rows):
        y = top + i * row_h
        bw = max(w * v / biggest, 1 if v else 0)
        bx = label_w + (w - bw) / 2 if centered else label_w
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" font-size="11" text-anchor="end" fill="#334e68">'
                     f"{escape(label)}</text>"
                     f'<rect x="{bx:.1f}" y="{y + 3}" width="{bw:.1f}" height="{row_h - 6}" fill="{colour}">'
                     f"<title>{escape(label)}: {int(v):,}</title></rect>"
                     f'<text x="{label_w + (w + bw) / 2 + 4 if centered else label_w + bw + 4:.1f}" y="{y + 15}" '
                     f'font-size="11" fill="#102a43">{int(v):,}</text>')
    parts.append("</svg>")
    return "".join(parts)
