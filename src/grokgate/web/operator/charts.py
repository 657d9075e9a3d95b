"""The money charts of the operator console: a few series per UTC day as grouped bars, drawn on the server as
inline SVG (no chart library, no script), like the customer console's usage chart. Values may be negative (a day
whose margin is a loss), so bars grow up or down from a zero line. A plain function of numbers."""

from __future__ import annotations

from markupsafe import Markup, escape

PALETTE = ("#3b6fd8", "#3aa676", "#e0803a", "#b04fc4", "#d14b5a")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 72, 24, 12


def _number(value: float, unit: str) -> str:
    return f"{value:,.2f} {unit}" if unit == "USD" else f"{value:,.0f} {unit}"


def _axis(value: float, unit: str) -> str:
    """An axis label: the number alone (the unit is in the chart's heading), short enough for the margin."""
    return f"{value:,.2f}" if unit == "USD" else f"{value:,.0f}"


def grouped_bars(days: list[str], series: list[tuple[str, list[float]]], *, label: str, unit: str) -> Markup:
    """One group of bars per day (oldest left), one bar per series; titles and data attributes carry the numbers."""
    values = [value for _, points in series for value in points]
    top, bottom = max([*values, 0.0]), min([*values, 0.0])
    if top == bottom:
        top = 1.0
    plot = HEIGHT - BOTTOM - TOP
    scale = plot / (top - bottom)
    zero = TOP + top * scale
    step = (WIDTH - LEFT) / max(1, len(days))
    bar = max(1.0, (step - 2) / max(1, len(series)))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 24}" role="img" aria-label="{escape(label)}">',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" class="axis">{escape(_axis(top, unit))}</text>',
        f'<text x="{LEFT - 6}" y="{zero + 4:.1f}" text-anchor="end" class="axis">0</text>',
        f'<line x1="{LEFT}" y1="{zero:.1f}" x2="{WIDTH}" y2="{zero:.1f}" class="axis-line"/>',
    ]
    if bottom < 0:
        parts.append(
            f'<text x="{LEFT - 6}" y="{HEIGHT - BOTTOM}" text-anchor="end" class="axis">'
            f"{escape(_axis(bottom, unit))}</text>"
        )
    for index, day in enumerate(days):
        x = LEFT + index * step + 1
        for number, (name, points) in enumerate(series):
            value = points[index]
            if not value:
                continue
            height = abs(value) * scale
            y = zero - height if value > 0 else zero
            parts.append(
                f'<rect x="{x + number * bar:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(height, 0.5):.1f}" '
                f'fill="{PALETTE[number % len(PALETTE)]}" data-series="{escape(name)}" data-day="{day}" '
                f'data-value="{value}"><title>{escape(f"{day} {name}: {_number(value, unit)}")}</title></rect>'
            )
        if index % 7 == 0 or (index == len(days) - 1 and index % 7 >= 4):
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">{day[5:]}</text>'
            )
    for number, (name, _) in enumerate(series):
        lx = LEFT + number * 170
        parts.append(
            f'<rect x="{lx}" y="{HEIGHT + 6}" width="12" height="12" fill="{PALETTE[number % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{lx + 18}" y="{HEIGHT + 16}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every dynamic piece above is a number or escaped)
