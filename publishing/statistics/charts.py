"""Server-rendered SVG charts (pygal), served as images: no script runs, and the page's CSP
(`img-src 'self'`) is unchanged. Every chart has its figures in a table beside it on the page.

A public chart never draws a hidden small cell: a count from 1 to 4 is left out of the chart
(the table says "<5"), since a bar's height would tell the number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pygal
from pygal.style import Style

from publishing.statistics.answers import Cell

FONT = 'system-ui, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif'
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b1b1b",
    foreground_strong="#1b1b1b",
    foreground_subtle="#555555",
    colors=("#8b1c1c", "#0b4f9c", "#2e7d32", "#c25e00", "#6a1b9a"),
    font_family=FONT,
    label_font_family=FONT,
    major_label_font_family=FONT,
    value_font_family=FONT,
    title_font_family=FONT,
    legend_font_family=FONT,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    title_font_size=16,
    opacity="1",
    opacity_hover="1",
)
_SCRIPT = re.compile(rb"<script\b.*?</script>", re.DOTALL)


def _value(cell: Cell) -> int | None:
    return cell if isinstance(cell, int) else None


def _render(chart: pygal.graph.graph.Graph) -> bytes:
    # pygal writes a config script even with js=[]: an image never runs it, and none is sent.
    return _SCRIPT.sub(b"", chart.render())


def _config(title: str, **extra: object) -> dict[str, object]:
    return {
        "title": title,
        "style": STYLE,
        "js": [],
        "explicit_size": False,
        "width": 800,
        "height": 420,
        "legend_at_bottom": True,
        "print_values": False,
        "show_minor_x_labels": True,
        "truncate_label": -1,
        "no_data_text": "暂无数据",
        **extra,
    }


def bars_over_time(title: str, labels: Sequence[str], series: dict[str, Sequence[Cell]]) -> bytes:
    chart = pygal.Bar(**_config(title, x_label_rotation=30 if len(labels) > 8 else 0))
    chart.x_labels = list(labels)
    if len(labels) > 16:
        step = max(1, len(labels) // 12)
        chart.x_labels_major = list(labels)[::step]
        chart.show_minor_x_labels = False
    for name, values in series.items():
        chart.add(name, [_value(v) for v in values])
    return _render(chart)


def line_over_time(title: str, labels: Sequence[str], series: dict[str, Sequence[Cell]]) -> bytes:
    chart = pygal.Line(**_config(title, x_label_rotation=30 if len(labels) > 8 else 0, fill=False))
    chart.x_labels = list(labels)
    if len(labels) > 16:
        step = max(1, len(labels) // 12)
        chart.x_labels_major = list(labels)[::step]
        chart.show_minor_x_labels = False
    for name, values in series.items():
        chart.add(name, [_value(v) for v in values])
    return _render(chart)


def horizontal_bars(
    title: str, rows: Sequence[tuple[str, Cell]], series_name: str, percent: bool = False
) -> bytes:
    height = max(240, 60 + 28 * len(rows))
    extra: dict[str, object] = {"height": height, "show_legend": False}
    if percent:
        extra |= {"range": (0, 100), "value_formatter": lambda v: f"{v:.0f}%"}
    chart = pygal.HorizontalBar(**_config(title, **extra))
    chart.x_labels = [label for label, _ in rows]
    chart.add(series_name, [_value(v) for _, v in rows])
    return _render(chart)
