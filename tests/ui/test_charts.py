"""Charts: well-formed SVG sized by viewBox, coordinates that follow the data, escaped text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.ui import charts

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert "width" not in root.attrib and "height" not in root.attrib
    assert root.attrib["role"] == "img"
    assert root[0].tag == f"{NS}title" and root[1].tag == f"{NS}desc"
    return root


def rects(root: ET.Element) -> list[dict[str, float]]:
    return [
        {k: float(v) for k, v in r.attrib.items() if k in {"x", "y", "width", "height"}}
        for r in root.iter(f"{NS}rect")
    ]


def test_bar_chart_scales_bars_to_the_largest_value() -> None:
    root = parse(charts.bar_chart([("a", 1.0), ("b", 2.0), ("c", 0.0)], title="T"))
    assert root.attrib["viewBox"] == f"0 0 {charts.WIDTH} {3 * charts.ROW_H + 2 * charts.PAD}"
    a, b, c = rects(root)
    assert b["width"] == charts.PLOT_W and a["width"] == charts.PLOT_W / 2 and c["width"] == 0
    assert a["x"] == b["x"] == charts.LABEL_W
    assert b["y"] - a["y"] == charts.ROW_H
    assert root[1].text == "a: 1; b: 2; c: 0"


def test_bar_chart_with_a_fixed_maximum() -> None:
    (bar,) = rects(parse(charts.bar_chart([("main", 25.0)], title="T", max_value=100.0)))
    assert bar["width"] == charts.PLOT_W / 4


def test_attribution_chart_diverges_around_zero() -> None:
    root = parse(charts.attribution_chart([("debt", 0.5), ("income", -0.25)], title="T"))
    up, down = rects(root)
    zero = charts.LABEL_W + charts.PLOT_W / 2
    assert up["x"] == zero and up["width"] == charts.PLOT_W / 2
    assert down["x"] + down["width"] == zero and down["width"] == charts.PLOT_W / 4
    fills = [r.attrib["fill"] for r in root.iter(f"{NS}rect")]
    assert fills == [charts.UP, charts.DOWN]


def test_stacked_bars_stack_series_in_order() -> None:
    columns = [("09:00", {"approve": 3.0, "decline": 1.0}), ("10:00", {"approve": 2.0})]
    root = parse(charts.stacked_bars(columns, title="T", series=["approve", "decline"]))
    bars = [r for r in rects(root) if r["width"] > 10]  # legend squares are 10 wide
    plot_h = charts.COL_H - charts.TOP - charts.BOTTOM
    first, second, third = bars
    # the scale tops out at 5 (nice ceiling of 4): 3 of 5 and 1 of 5 stacked on it
    assert first["height"] == pytest.approx(plot_h * 3 / 5, abs=0.01)
    assert second["height"] == pytest.approx(plot_h / 5, abs=0.01)
    assert second["y"] + second["height"] == pytest.approx(first["y"], abs=0.01)
    assert first["x"] == second["x"] < third["x"]
    assert "4 in all" not in (root[1].text or "") and "6 in all" in (root[1].text or "")


def test_histogram_bins_values_and_draws_threshold_lines() -> None:
    svg = charts.histogram(
        [0.1, 0.1, 0.6], bins=2, lo=0.0, hi=1.0, title="T",
        lines=[("approve below", 0.5), ("outside", 2.0)],
    )  # fmt: skip
    root = parse(svg)
    bars = rects(root)
    plot_w = 720 - charts.LEFT - charts.RIGHT
    assert [b["width"] for b in bars] == [plot_w / 2, plot_w / 2]
    assert bars[0]["height"] == pytest.approx(2 * bars[1]["height"])
    dashed = [ln for ln in root.iter(f"{NS}line") if ln.attrib.get("stroke-dasharray")]
    assert len(dashed) == 1  # the line outside the range is not drawn...
    assert float(dashed[0].attrib["x1"]) == charts.LEFT + plot_w / 2
    assert "outside 2" in (root[1].text or "")  # ...but named in the description


def test_bin_counts_edges() -> None:
    assert charts.bin_counts([0.0, 0.5, 1.0], 2, 0.0, 1.0) == [1, 2]
    assert charts.bin_counts([3.0], 4, 3.0, 3.0) == [1, 0, 0, 0]


@pytest.mark.parametrize(
    "svg",
    [
        charts.bar_chart([], title="T"),
        charts.attribution_chart([], title="T"),
        charts.stacked_bars([], title="T"),
        charts.stacked_bars([("a", {})], title="T"),
        charts.histogram([], title="T"),
    ],
)
def test_empty_data_gives_a_chart_that_says_so(svg: str) -> None:
    root = parse(svg)
    assert "no " in "".join(root.itertext())
    assert not rects(root)


def test_bad_values_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        charts.bar_chart([("a", -1.0)], title="T")
    with pytest.raises(InvalidInputError):
        charts.histogram([float("nan")], title="T")
    with pytest.raises(InvalidInputError):
        charts.histogram([1.0], bins=0, title="T")


@given(st.text(), st.text())
def test_text_is_escaped(label: str, title: str) -> None:
    label = "".join(c for c in label if c.isprintable())
    title = "".join(c for c in title if c.isprintable())
    for svg in (
        charts.bar_chart([(label, 1.0)], title=title),
        charts.attribution_chart([(label, -1.0)], title=title),
        charts.stacked_bars([(label, {label: 1.0})], title=title),
        charts.histogram([0.5], lines=[(label, 0.5)], title=title),
    ):
        root = parse(svg)  # well-formed whatever the text
        assert root[0].text == (title or None)
        assert "<script" not in svg.lower() or "&lt;script" in svg.lower()
