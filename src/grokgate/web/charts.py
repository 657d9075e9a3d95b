"""The usage chart of the billing page: credits per day, stacked by sub-model, as an inline SVG drawn on the
server (no chart library, no script). A plain function of the rows `billing.report.daily_usage` returns."""

from __future__ import annotations

from datetime import date, timedelta

from markupsafe import Markup, escape

PALETTE = ("#3b6fd8", "#e0803a", "#3aa676", "#b04fc4", "#c9a227", "#d14b5a", "#4bb6c9", "#7a7f8a", "#8c5a3c")
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 220, 48, 24


def usage_chart(rows: list[tuple[str, str, int]], *, days: int, today: date) -> Markup:
    """One bar a day for the last `days` days (oldest left), each sub-model a colour; titles carry the numbers."""
    first = today - timedelta(days=days - 1)
    models = sorted({model for _, model, _ in rows})
    colour = {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(models)}
    per_day: dict[str, dict[str, int]] = {}
    for day, model, credits in rows:
        per_day.setdefault(day, {})[model] = per_day.get(day, {}).get(model, 0) + max(0, credits)
    top = max([sum(values.values()) for values in per_day.values()] + [1])
    step = (WIDTH - LEFT) / days
    plot = HEIGHT - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 24 * ((len(models) + 3) // 4)}" role="img" '
        f'aria-label="Credits used per day by sub-model" data-total="{sum(max(0, r[2]) for r in rows)}">',
        f'<text x="{LEFT - 6}" y="12" text-anchor="end" class="axis">{top}</text>',
        f'<text x="{LEFT - 6}" y="{plot}" text-anchor="end" class="axis">0</text>',
        f'<line x1="{LEFT}" y1="{plot}" x2="{WIDTH}" y2="{plot}" class="axis-line"/>',
    ]
    for index in range(days):
        day = (first + timedelta(days=index)).isoformat()
        x = LEFT + index * step
        y = float(plot)
        for model in models:
            credits = per_day.get(day, {}).get(model, 0)
            if not credits:
                continue
            height = credits / top * (plot - 12)
            y -= height
            label = escape(f"{day} {model}: {credits} credits")
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" height="{height:.1f}" '
                f'fill="{colour[model]}" data-model="{escape(model)}" data-day="{day}" data-credits="{credits}">'
                f"<title>{label}</title></rect>"
            )
        if index % 7 == 0 or index == days - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">{day[5:]}</text>'
            )
    for i, model in enumerate(models):
        lx, ly = LEFT + (i % 4) * 170, HEIGHT + 16 + 24 * (i // 4)
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour[model]}"/>')
        parts.append(f'<text x="{lx + 18}" y="{ly}" class="legend">{escape(model)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every dynamic piece above is a number or escaped)
