"""Charts drawn as SVG on the server: no JavaScript, printable, readable without colour.

Each function returns a complete ``<svg>`` element as a ``SafeString``. Every
text that comes from data is escaped; numbers are formatted by the caller's
``value_format``. Bars carry their value as text, so the chart reads the same
in print and to a screen reader (each chart has a ``<title>``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from babel import Locale
from babel.numbers import format_decimal
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, to_locale

from .money import money_language

PALETTE = ("#2f6fdf", "#d9822b", "#2e9e6a", "#b8405e", "#7d5fc5", "#5f7d8e")


def _fmt(value: float) -> str:
    whole = float(value).is_integer()
    language = money_language()
    if language is None:
        return f"{value:,.0f}" if whole else f"{value:,.1f}"
    pattern = "#,##0" if whole else "#,##0.0"  # German 3.000, 2,5
    return str(format_decimal(value, format=pattern, locale=Locale.parse(to_locale(language))))


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""  # shown after the value, e.g. "26.3%"
    text: str = ""  # the value as shown (default: ``value_format(value)``)
    target: float | None = None  # drawn as a tick across this bar's row


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    width: int = 640,
    bar_height: int = 22,
    label_width: int = 190,
    value_format: Callable[[float], str] = _fmt,
    target: float | None = None,
    target_label: str = "",
) -> SafeString:
    """Horizontal bars, one per item, scaled to the largest value (or the target)."""
    target_label = target_label or gettext("target")
    target_words = gettext("target %(value)s")
    gap = 8
    top = 8
    height = top * 2 + max(1, len(bars)) * (bar_height + gap)
    plot = width - label_width - 110
    peak = max([b.value for b in bars] + [b.target or 0 for b in bars] + [target or 0, 0]) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart--bar" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        empty = escape(gettext("No data this month"))
        parts.append(f'<text x="8" y="{top + 16}" class="chart-empty">{empty}</text>')
    for i, bar in enumerate(bars):
        y = top + i * (bar_height + gap)
        length = max(0.0, plot * bar.value / peak)
        value_text = (bar.text or value_format(bar.value)) + (f"  {bar.note}" if bar.note else "")
        parts += [
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
            f'class="chart-label">{escape(bar.label)}</text>',
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" '
            f'rx="2" fill="{PALETTE[0]}"><title>{escape(bar.label)}: {escape(value_text)}'
            "</title></rect>",
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height * 0.7:.1f}" '
            f'class="chart-value">{escape(value_text)}</text>',
        ]
        if bar.target is not None:
            tx = label_width + plot * bar.target / peak
            parts.append(
                f'<line x1="{tx:.1f}" y1="{y - 2}" x2="{tx:.1f}" y2="{y + bar_height + 2}" '
                'class="chart-target" stroke="#b8405e" stroke-width="2" stroke-dasharray="3 2">'
                f"<title>{escape(target_words % {'value': value_format(bar.target)})}"
                "</title></line>"
            )
    if target is not None and bars:
        x = label_width + plot * target / peak
        parts += [
            f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{height - 2}" class="chart-target" '
            'stroke="#b8405e" stroke-width="2" stroke-dasharray="4 3"/>',
            f'<text x="{x + 4:.1f}" y="{height - 4}" class="chart-target-label">'
            f"{escape(target_label)}</text>",
        ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every data text above is escaped


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def line_chart(
    series: Sequence[Series],
    labels: Sequence[str],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
    value_format: Callable[[float], str] = _fmt,
) -> SafeString:
    """One line per series over ``labels`` (e.g. months), with points, values and a legend."""
    left, right, top, bottom = 48, 36, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for s in series for v in s.values] + [0]) or 1
    steps = max(1, len(labels) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / steps

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart--line" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#999" stroke-width="1"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="chart-axis">'
        f"{escape(value_format(peak))}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="chart-axis">0</text>',
    ]
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle" class="chart-axis">'
            f"{escape(label)}</text>"
        )
    for n, s in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        dash = "" if n == 0 else ' stroke-dasharray="6 4"'
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        for i, v in enumerate(s.values):
            parts += [
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(s.name)} {escape(labels[i])}: {escape(value_format(v))}</title>"
                "</circle>",
                f'<text x="{x(i):.1f}" y="{y(v) - 7:.1f}" text-anchor="middle" '
                f'class="chart-value">{escape(value_format(v))}</text>',
            ]
        lx = left + n * 170
        parts += [
            f'<line x1="{lx}" y1="12" x2="{lx + 22}" y2="12" stroke="{colour}" '
            f'stroke-width="2"{dash}/>',
            f'<text x="{lx + 28}" y="16" class="chart-legend">{escape(s.name)}</text>',
        ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every data text above is escaped
