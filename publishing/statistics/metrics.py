"""The statistics as Prometheus gauges, built per scrape in a registry of this module's own
(nothing global is registered at import)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, and_, func, select

from publishing.statistics.queries import Filters, Period, breakdown
from publishing.statistics.reader import CURSOR, month_start
from publishing.sync.models import AssistanceNotice, Subscription
from registry.calendar import china_date
from registry.eventlog.models import ReaderCursor
from registry.eventlog.services import head


class _Gauges(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def _gauges(conn: Connection, now: datetime) -> list[Metric]:
    today = china_date(now)
    month = Period(month_start(today), today, "month")
    active = GaugeMetricFamily(
        "registry_statistics_active_listings", "Listings active today, by province", labels=["province"]
    )
    listed = GaugeMetricFamily(
        "registry_statistics_listed_this_month",
        "Listings dated this month (China), by province",
        labels=["province"],
    )
    removed = GaugeMetricFamily(
        "registry_statistics_removed_this_month",
        "Removals effective this month, by province",
        labels=["province"],
    )
    timeliness = GaugeMetricFamily(
        "registry_statistics_removals_this_month",
        "Removals effective this month by whether they met the three working days",
        labels=["timeliness"],
    )
    on_time = late = 0
    for row in breakdown(conn, month, Filters(), "province"):
        province = row.key or "unknown"
        active.add_metric([province], row.figures.active_end)
        listed.add_metric([province], row.figures.listed)
        removed.add_metric([province], row.figures.removed)
        on_time += row.figures.removed_on_time
        late += row.figures.removed_late
    timeliness.add_metric(["on_time"], on_time)
    timeliness.add_metric(["late"], late)
    overdue = GaugeMetricFamily(
        "registry_statistics_notices_overdue",
        "Assistance notices past their deadline, neither acknowledged nor objected to",
        labels=["client", "profile"],
    )
    notice = AssistanceNotice
    rows = conn.execute(
        select(notice.client_id, Subscription.profile, func.count())
        .join(Subscription, Subscription.id == notice.subscription_id)
        .where(and_(notice.acknowledged_at.is_(None), notice.objected_at.is_(None), notice.due_at < now))
        .group_by(notice.client_id, Subscription.profile)
    )
    for client_id, profile, count in rows:
        overdue.add_metric([client_id, profile], int(count))
    lag = GaugeMetricFamily(
        "registry_statistics_reader_lag_events", "Log events the statistics reader has still to read"
    )
    position = conn.execute(select(ReaderCursor.position).where(ReaderCursor.name == CURSOR)).scalar() or 0
    lag.add_metric([], head(conn)[0] - int(position))
    return [active, listed, removed, timeliness, overdue, lag]


def prometheus_text(conn: Connection, now: datetime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Gauges(_gauges(conn, now)))
    return generate_latest(registry)
