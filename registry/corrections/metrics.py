"""Prometheus text of the correction deadlines, built per scrape in a registry of its own."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _Corrections(Collector):
    def __init__(self, open_counts: dict[str, int], overdue: dict[tuple[str, str], int]) -> None:
        self._open = open_counts
        self._overdue = overdue

    def collect(self) -> Iterable[Metric]:
        open_gauge = GaugeMetricFamily(
            "registry_corrections_open",
            "Corrections awaiting a review, a reconsideration or the correction itself",
            labels=["awaiting"],
        )
        for awaiting, count in sorted(self._open.items()):
            open_gauge.add_metric([awaiting], count)
        overdue = GaugeMetricFamily(
            "registry_corrections_overdue",
            "Corrections past their deadline (SPC Art. 9, 11, 12), by the court whose move it is",
            labels=["court", "awaiting"],
        )
        for (court, awaiting), count in sorted(self._overdue.items()):
            overdue.add_metric([court, awaiting], count)
        return [open_gauge, overdue]


def prometheus_text(open_counts: dict[str, int], overdue: dict[tuple[str, str], int]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Corrections(open_counts, overdue))
    return generate_latest(registry)
