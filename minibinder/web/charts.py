"""Small server-rendered SVG charts for the operator's page (pure)."""

from __future__ import annotations

from html import escape


def line_chart(
    points: list[tuple[float, float]],
    start: float,
    end: float,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 160,
    dots: bool = False,
) -> str:
    """An SVG chart of (time, value) points between `start` and `end` (Unix times)."""
    pad_left, pad_bottom, pad_top = 40, 20, 20
    inner_w, inner_h = width - pad_left - 10, height - pad_bottom - pad_top
    top = max([value for _, value in points] + [1.0])

    def x(when: float) -> float:
        return pad_left + (when - start) / max(end - start, 1) * inner_w

    def y(value: float) -> float:
        return pad_top + inner_h - value / top * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="{pad_left}" y="14" font-size="12">{escape(title)}</text>',
        f'<line x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - 10}" '
        f'y2="{pad_top + inner_h}" stroke="#999"/>',
        f'<text x="4" y="{pad_top + 10}" font-size="10">{top:g}{escape(unit)}</text>',
        f'<text x="4" y="{pad_top + inner_h}" font-size="10">0</text>',
        f'<text x="{pad_left}" y="{height - 4}" font-size="10">24 h ago</text>',
        f'<text x="{width - 40}" y="{height - 4}" font-size="10">now</text>',
    ]
    if dots:
        parts += [
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="#e66581"/>' for t, v in points
        ]
    elif points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        parts.append(f'<polyline fill="none" stroke="#e66581" stroke-width="2" points="{path}"/>')
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" font-size="12" '
            f'text-anchor="middle" fill="#777">no data yet</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
