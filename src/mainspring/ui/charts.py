"""Charts as inline SVG, drawn on the server: no JavaScript, no network, readable by screen readers.

Every chart is one ``<svg>`` sized by its ``viewBox`` only (the page's CSS decides how wide it
shows), with ``role="img"``, a ``<title>`` and a ``<desc>`` that states the data in words. All
text is XML-escaped here, so a chart is safe to embed as markup.

>>> svg = bar_chart([("main", 90.0), ("canary", 10.0)], title="Traffic", unit="%")
>>> svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 56"')
True
>>> "<desc>main: 90%; canary: 10%</desc>" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from mainspring.errors import InvalidInputError

#: Series colours (colour-blind safe, Okabe-Ito), assigned in order.
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
)
UP = "#d55e00"  # pushes the score up
DOWN = "#0072b2"  # pushes the score down
WIDTH = 600
#: Horizontal bar charts: label column, value column, row and bar height.
LABEL_W, VALUE_W, ROW_H, BAR_H, PAD = 170, 70, 24, 16, 4
PLOT_W = WIDTH - LABEL_W - VALUE_W
#: Column charts (stacked bars, histograms): margins around the plot.
COL_H, LEFT, RIGHT, TOP, BOTTOM = 220, 48, 12, 28, 36


def _n(x: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def number(value: float) -> str:
    """A value as a label: integers without decimals, others with up to 4 significant digits.

    >>> number(3.0), number(0.12345), number(1234567.0)
    ('3', '0.1235', '1234567')
    """
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:.4g}"


def _open(width: float, height: float, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'role="img" class="chart" font-family="sans-serif" font-size="12">',
        f"<title>{_t(title)}</title>",
        f"<desc>{_t(desc)}</desc>",
    ]


def _empty(title: str, message: str = "no data") -> str:
    parts = _open(WIDTH, 40, title, message)
    parts.append(
        f'<text x="{WIDTH // 2}" y="24" text-anchor="middle" fill="#666">{_t(message)}</text>'
    )
    return "".join([*parts, "</svg>"])


def _check(values: Sequence[float], what: str, *, negative: bool = False) -> None:
    for value in values:
        if not math.isfinite(value) or (not negative and value < 0):
            kind = "finite numbers" if negative else "finite numbers of at least 0"
            raise InvalidInputError(f"{what} must be {kind}, not {value!r}", field=what)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    max_value: float | None = None,
) -> str:
    """Horizontal bars, one row per ``(label, value)``; the longest is ``max_value`` (default:
    the largest value). Values are counts, rates or shares, so never negative."""
    if not bars:
        return _empty(title)
    values = [float(v) for _, v in bars]
    _check(values, "values")
    top = max_value if max_value is not None else max(values)
    scale = PLOT_W / top if top > 0 else 0.0
    height = len(bars) * ROW_H + 2 * PAD
    desc = "; ".join(
        f"{label}: {number(v)}{unit}" for (label, _), v in zip(bars, values, strict=True)
    )
    parts = _open(WIDTH, height, title, desc)
    for i, ((label, _), value) in enumerate(zip(bars, values, strict=True)):
        y = PAD + i * ROW_H
        mid = y + ROW_H / 2 + 4
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{_n(mid)}" text-anchor="end">{_t(label)}</text>'
            f'<rect x="{LABEL_W}" y="{_n(y + (ROW_H - BAR_H) / 2)}" width="{_n(value * scale)}" '
            f'height="{BAR_H}" fill="{PALETTE[i % len(PALETTE)]}"><title>{_t(label)}: '
            f"{number(value)}{_t(unit)}</title></rect>"
            f'<text x="{_n(LABEL_W + value * scale + 4)}" y="{_n(mid)}">'
            f"{number(value)}{_t(unit)}</text>"
        )
    return "".join([*parts, "</svg>"])


def attribution_chart(items: Sequence[tuple[str, float]], *, title: str) -> str:
    """Diverging horizontal bars around zero: how much each feature pushed the score up (right)
    or down (left), scaled so the largest magnitude fills half the plot."""
    if not items:
        return _empty(title, "no attributions")
    values = [float(v) for _, v in items]
    _check(values, "contributions", negative=True)
    biggest = max(abs(v) for v in values)
    half = PLOT_W / 2
    scale = half / biggest if biggest > 0 else 0.0
    zero = LABEL_W + half
    height = len(items) * ROW_H + 2 * PAD
    desc = "; ".join(f"{label}: {v:+.4f}" for (label, _), v in zip(items, values, strict=True))
    parts = _open(WIDTH, height, title, desc)
    for i, ((label, _), value) in enumerate(zip(items, values, strict=True)):
        y = PAD + i * ROW_H
        mid = y + ROW_H / 2 + 4
        width = abs(value) * scale
        x = zero if value >= 0 else zero - width
        colour = UP if value >= 0 else DOWN
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{_n(mid)}" text-anchor="end">{_t(label)}</text>'
            f'<rect x="{_n(x)}" y="{_n(y + (ROW_H - BAR_H) / 2)}" width="{_n(width)}" '
            f'height="{BAR_H}" fill="{colour}"><title>{_t(label)}: {value:+.4f}</title></rect>'
            f'<text x="{WIDTH - VALUE_W + 6}" y="{_n(mid)}">{value:+.4f}</text>'
        )
    parts.append(
        f'<line x1="{_n(zero)}" y1="{PAD}" x2="{_n(zero)}" y2="{_n(height - PAD)}" '
        'stroke="#333" stroke-width="1"/>'
    )
    return "".join([*parts, "</svg>"])


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value``.

    >>> nice_ceiling(7), nice_ceiling(0.3), nice_ceiling(120), nice_ceiling(0)
    (10.0, 0.5, 200.0, 1.0)
    """
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _axis(parts: list[str], top: float, plot_h: float, width: float) -> None:
    """Y gridlines and tick labels at 0, half and the top of the scale."""
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" y1="{_n(y)}" x2="{_n(width - RIGHT)}" y2="{_n(y)}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 4}" y="{_n(y + 4)}" text-anchor="end" fill="#555">'
            f"{number(top * fraction)}</text>"
        )


def stacked_bars(
    columns: Sequence[tuple[str, Mapping[str, float]]],
    *,
    title: str,
    series: Sequence[str] | None = None,
    width: float = 720,
) -> str:
    """Columns over time (``(label, {series: value})``), each stacked by series, with a legend.

    ``series`` fixes the stacking order and colours (default: every series seen, sorted).
    """
    names = list(series) if series is not None else sorted({s for _, c in columns for s in c})
    totals = [sum(float(c.get(s, 0.0)) for s in names) for _, c in columns]
    if not columns or not names or not any(totals):
        return _empty(title)
    for _, column in columns:
        _check([float(v) for v in column.values()], "values")
    top = nice_ceiling(max(totals))
    plot_w, plot_h = width - LEFT - RIGHT, COL_H - TOP - BOTTOM
    step = plot_w / len(columns)
    bar_w = step * 0.8
    desc = f"{sum(totals):g} in all; " + "; ".join(
        f"{label}: " + ", ".join(f"{s} {number(float(c[s]))}" for s in names if c.get(s))
        for (label, c), total in zip(columns, totals, strict=True)
        if total
    )
    parts = _open(width, COL_H, title, desc)
    _axis(parts, top, plot_h, width)
    x_legend = LEFT
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{_n(x_legend)}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{_n(x_legend + 14)}" y="15">{_t(name)}</text>'
        )
        x_legend += 24 + 7 * len(name)
    every = max(1, math.ceil(len(columns) / 12))
    for j, (label, column) in enumerate(columns):
        x = LEFT + j * step + (step - bar_w) / 2
        base = 0.0
        for i, name in enumerate(names):
            value = float(column.get(name, 0.0))
            if value <= 0:
                continue
            h = value / top * plot_h
            y = TOP + plot_h - base - h
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(bar_w)}" height="{_n(h)}" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_t(label)} {_t(name)}: '
                f"{number(value)}</title></rect>"
            )
            base += h
        if j % every == 0:
            parts.append(
                f'<text x="{_n(x + bar_w / 2)}" y="{_n(COL_H - BOTTOM + 16)}" '
                f'text-anchor="middle" fill="#555">{_t(label)}</text>'
            )
    return "".join([*parts, "</svg>"])


def bin_counts(values: Sequence[float], bins: int, lo: float, hi: float) -> list[int]:
    """How many ``values`` fall in each of ``bins`` equal bins over ``[lo, hi]`` (the last bin
    includes ``hi``; values outside are not counted).

    >>> bin_counts([0.0, 0.1, 0.5, 0.99, 1.0, 1.5], 2, 0.0, 1.0)
    [2, 3]
    """
    counts = [0] * bins
    span = hi - lo
    for value in values:
        if not lo <= value <= hi:
            continue
        i = min(int((value - lo) / span * bins), bins - 1) if span > 0 else 0
        counts[i] += 1
    return counts


def histogram(
    values: Sequence[float],
    *,
    title: str,
    bins: int = 20,
    lo: float | None = None,
    hi: float | None = None,
    lines: Sequence[tuple[str, float]] = (),
    width: float = 720,
) -> str:
    """A histogram of ``values`` over ``[lo, hi]`` (default: their range) with labelled vertical
    lines (``(label, x)``: policy thresholds, the review band); lines outside the range are
    named in the description but not drawn."""
    if bins < 1:
        raise InvalidInputError("bins must be at least 1", field="bins")
    data = [float(v) for v in values]
    _check(data, "values", negative=True)
    if not data:
        return _empty(title)
    low = min(data) if lo is None else lo
    high = max(data) if hi is None else hi
    if high <= low:
        high = low + 1.0
    counts = bin_counts(data, bins, low, high)
    top = nice_ceiling(max(counts))
    plot_w, plot_h = width - LEFT - RIGHT, COL_H - TOP - BOTTOM
    bar_w = plot_w / bins

    def x_of(value: float) -> float:
        return LEFT + (value - low) / (high - low) * plot_w

    shown = [(label, x) for label, x in lines if low <= x <= high]
    desc = f"{len(data)} values from {number(low)} to {number(high)} in {bins} bins"
    if lines:
        desc += "; lines at " + ", ".join(f"{label} {number(x)}" for label, x in lines)
    parts = _open(width, COL_H, title, desc)
    _axis(parts, top, plot_h, width)
    for i, count in enumerate(counts):
        if not count:
            continue
        h = count / top * plot_h
        start = low + (high - low) * i / bins
        end = low + (high - low) * (i + 1) / bins
        parts.append(
            f'<rect x="{_n(LEFT + i * bar_w)}" y="{_n(TOP + plot_h - h)}" width="{_n(bar_w)}" '
            f'height="{_n(h)}" fill="{PALETTE[0]}" stroke="#fff" stroke-width="0.5">'
            f"<title>{number(start)} to {number(end)}: {count}</title></rect>"
        )
    for x in (low, high):
        parts.append(
            f'<text x="{_n(x_of(x))}" y="{_n(COL_H - BOTTOM + 16)}" text-anchor="middle" '
            f'fill="#555">{number(x)}</text>'
        )
    for k, (label, x) in enumerate(shown):
        xx = x_of(x)
        parts.append(
            f'<line x1="{_n(xx)}" y1="{TOP}" x2="{_n(xx)}" y2="{_n(TOP + plot_h)}" '
            f'stroke="{UP}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{_n(xx + 3)}" y="{_n(TOP + 12 + 13 * (k % 3))}" fill="{UP}">'
            f"{_t(label)} {number(x)}</text>"
        )
    return "".join([*parts, "</svg>"])
