"""Server-rendered inline SVG line charts (no JavaScript, no chart library).

The privacy-budget page draws each edge's cumulative ε after every accounted release, with the
configured budget as a dashed line. Labels are escaped; the SVG has a ``<title>`` per series so
screen readers and tooltips name the edge and model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Series colours (colour-blind friendly, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")


@dataclass(frozen=True)
class Line:
    """One series: a label and its ``(x, y)`` points."""

    label: str
    points: Sequence[tuple[float, float]]


def _nice_max(value: float) -> float:
    """Round ``value`` up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def line_chart(
    lines: Sequence[Line],
    *,
    x_label: str,
    y_label: str,
    limit: float | None = None,
    limit_label: str = "",
    width: int = 640,
    height: int = 260,
) -> str:
    """Render series as an inline SVG line chart.

    Parameters
    ----------
    lines : Sequence[Line]
        The series (at most a few dozen points each keep the SVG small).
    x_label, y_label : str
        Axis titles (already translated).
    limit : float or None
        A horizontal reference line (the ε budget), or ``None``.
    limit_label : str
        Text next to the reference line.
    width, height : int
        Size in CSS pixels.

    Returns
    -------
    str
        ``<svg>`` markup, safe to insert unescaped (every label is escaped here).
    """
    left, right, top, bottom = 48, 12, 12, 36
    xs = [x for line in lines for x, _ in line.points] or [1.0]
    ys = [y for line in lines for _, y in line.points] + ([limit] if limit else [])
    x_max = max(max(xs), 2.0)
    y_max = _nice_max(max(ys, default=1.0))
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - 1) / (x_max - 1) * plot_w

    def py(y: float) -> float:
        return top + plot_h - y / y_max * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = y_max * frac
        parts.append(
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{y:g}</text>"
        )
    for x in sorted({1.0, float(round(x_max / 2)), x_max}):
        parts.append(
            f'<text x="{px(x):.1f}" y="{top + plot_h + 14}" font-size="11" '
            f'text-anchor="middle">{x:g}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    if limit:
        parts.append(
            f'<line x1="{left}" y1="{py(limit):.1f}" x2="{left + plot_w}" y2="{py(limit):.1f}" '
            'stroke="#c00" stroke-dasharray="6 4"/>'
            f'<text x="{left + plot_w - 4}" y="{py(limit) - 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#c00">{escape(limit_label)} {limit:g}</text>'
        )
    for index, line in enumerate(lines):
        colour = PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{coords}"><title>{escape(line.label)}</title></polyline>'
        )
        for x, y in line.points:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)
