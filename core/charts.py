"""Small server-rendered SVG charts for the admin home: no JavaScript, no build step.

Colours and strokes come from classes in static/css/admin.css (the production CSP forbids
inline styles); only geometry is written here. Every bar and point carries a <title>, so the
exact figure shows on hover and reaches screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 22


@dataclass
class Series:
    name: str
    css: str  # a class from admin.css: dp-s-<name>
    values: list[float | None]


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "s":
        return f"{value:.1f} s"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k{unit}"
    return f"{value:,.0f}{unit}" if value == int(value) else f"{value:,.2f}{unit}"


def _frame(
    *, title: str, labels: list[str], top: float, unit: str, body: Sequence[str], series: list[Series]
) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    axis = [
        format_html(
            '<line class="dp-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>', LEFT, TOP + plot_h, WIDTH - RIGHT, TOP + plot_h
        ),
        format_html(
            '<text class="dp-tick" x="{}" y="{}" text-anchor="end">{}</text>', LEFT - 4, TOP + 8, _number(top, unit)
        ),
        format_html('<text class="dp-tick" x="{}" y="{}" text-anchor="end">0</text>', LEFT - 4, TOP + plot_h),
    ]
    if labels:
        slot = (WIDTH - LEFT - RIGHT) / len(labels)
        for index in sorted({0, len(labels) // 2, len(labels) - 1}):
            axis.append(format_html('<text class="dp-tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                                    round(LEFT + slot * (index + 0.5), 1), HEIGHT - 6, labels[index]))  # fmt: skip
    legend = "".join(format_html('<li class="{}">{}</li>', s.css, s.name) for s in series)
    return format_html(
        '<figure class="dp-chart"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="none">{}{}</svg>'
        '<ul class="dp-legend">{}</ul></figure>',
        title, WIDTH, HEIGHT, title, mark_safe("".join(axis)), mark_safe("".join(body)), mark_safe(legend),
    )  # fmt: skip


def _top(values: Sequence[float | None]) -> float:
    top = max([v for v in values if v is not None] or [0])
    return top if top > 0 else 1


def bar_chart(*, title: str, labels: list[str], series: list[Series], unit: str = "") -> SafeString:
    """Bars per label, the series stacked on each other (one series: plain bars)."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top = _top(totals)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    body = []
    for i, label in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            height = value / top * plot_h
            y = TOP + plot_h - (base + value) / top * plot_h
            body.append(format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{} · {}: {}</title></rect>',
                s.css, round(LEFT + slot * i + slot * 0.1, 1), round(y, 1), round(slot * 0.8, 1),
                round(max(height, 0.5), 1), label, s.name, _number(value, unit),
            ))  # fmt: skip
            base += value
    return _frame(title=title, labels=labels, top=top, unit=unit, body=body, series=series)


def line_chart(
    *, title: str, labels: list[str], series: list[Series], unit: str = "", top: float | None = None
) -> SafeString:
    """One line per series; a day without a value (None) breaks the line."""
    top = top or _top([v for s in series for v in s.values])
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    body = []
    for s in series:
        segment: list[str] = []
        points = []
        for i, value in enumerate([*s.values, None]):
            if value is None:
                if len(segment) > 1:
                    body.append(format_html('<polyline class="{} dp-line" points="{}"/>', s.css, " ".join(segment)))
                segment = []
                continue
            x, y = round(LEFT + slot * (i + 0.5), 1), round(TOP + plot_h - min(value, top) / top * plot_h, 1)
            segment.append(f"{x},{y}")
            points.append(format_html('<circle class="{} dp-point" cx="{}" cy="{}" r="2.5"><title>{} · {}: {}</title></circle>',
                                      s.css, x, y, labels[i], s.name, _number(value, unit)))  # fmt: skip
        body.extend(points)
    return _frame(title=title, labels=labels, top=top, unit=unit, body=body, series=series)
