"""Prometheus text for the sync status, built per scrape in a registry this module owns
(nothing global is registered at import, so two apps in one process do not collide)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from registry.calendar import last_covered_year


class _Snapshot(Collector):
    def __init__(self, statuses: list[dict[str, Any]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[Metric]:
        labels = ["subscription", "client", "profile", "mode"]
        backlog = GaugeMetricFamily(
            "registry_sync_backlog_events", "Log events not yet acknowledged", labels=labels
        )
        cursor = GaugeMetricFamily("registry_sync_cursor", "Last log position acknowledged", labels=labels)
        delivered = GaugeMetricFamily(
            "registry_sync_delivered_events", "Events acknowledged since creation", labels=labels
        )
        failures = GaugeMetricFamily(
            "registry_sync_failures", "Failed deliveries since creation", labels=labels
        )
        failing = GaugeMetricFamily(
            "registry_sync_failing", "1 when the subscription is flagged failing", labels=labels
        )
        lease_lost = GaugeMetricFamily(
            "registry_sync_lease_lost",
            "Times a worker found its lease on the subscription taken over mid-delivery",
            labels=labels,
        )
        lane_delivered = GaugeMetricFamily(
            "registry_sync_lane_delivered_events",
            "Removals acknowledged through the removal lane, ahead of the backlog, since creation",
            labels=labels,
        )
        lane_ahead = GaugeMetricFamily(
            "registry_sync_lane_ahead_events",
            "Removals acknowledged through the removal lane that the cursor has not yet passed",
            labels=labels,
        )
        latency = GaugeMetricFamily(
            "registry_sync_latency_seconds",
            "Commit-to-acknowledgement time over the latest acknowledgements",
            labels=[*labels, "quantile"],
        )
        for status in self._statuses:
            values = [status["id"], status["client_id"], status["profile"], status["mode"]]
            backlog.add_metric(values, status["backlog"])
            cursor.add_metric(values, status["cursor"])
            delivered.add_metric(values, status["delivered_total"])
            failures.add_metric(values, status["failures_total"])
            failing.add_metric(values, 1 if status["state"] == "failing" else 0)
            lease_lost.add_metric(values, status["lease_lost_total"])
            lane_delivered.add_metric(values, status["removal_lane"]["delivered_total"])
            lane_ahead.add_metric(values, status["removal_lane"]["ahead_of_cursor"])
            for name, quantile in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")):
                value = status["latency_seconds"][name]
                if value is not None:
                    latency.add_metric([*values, quantile], value)
        return [
            backlog,
            cursor,
            delivered,
            failures,
            failing,
            lease_lost,
            lane_delivered,
            lane_ahead,
            latency,
        ]


class _Calendar(Collector):
    """Deadlines counted Monday to Friday because the working-day calendar does not cover their
    year yet: alert on any, and upgrade `chinesecalendar` (docs/operations.md#working-days)."""

    def __init__(self, provisional: list[date]) -> None:
        self._provisional = provisional

    def collect(self) -> Iterable[Metric]:
        covered = GaugeMetricFamily(
            "registry_calendar_covered_through_year", "Last year the working-day calendar covers"
        )
        covered.add_metric([], last_covered_year())
        provisional = GaugeMetricFamily(
            "registry_calendar_provisional_deadlines",
            "Stored deadlines (removals, notices, corrections) on a year the working-day calendar "
            "does not cover",
            labels=["year"],
        )
        for year, count in sorted(Counter(day.year for day in self._provisional).items()):
            provisional.add_metric([str(year)], count)
        return [covered, provisional]


def prometheus_text(statuses: list[dict[str, Any]], provisional: list[date]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(statuses))
    registry.register(_Calendar(provisional))
    return generate_latest(registry)
