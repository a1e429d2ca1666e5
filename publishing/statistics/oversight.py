"""The oversight figures (Opinion Art. 22-24): whether deletions come on time, whether the
agencies act on assistance notices, how special debtors perform.

Each figure is a `Section`: a titled table that the JSON answer, the CSV and the dashboard
show alike, the JSON with its codes, the CSV and the dashboard in words (`shown`). Adding a
figure means one function returning a `Section` and one entry in `SECTIONS`; nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.orm import aliased

from publishing.statistics.params import StatisticsQuery
from publishing.statistics.queries import Filters, removals_by_court, special_performance
from publishing.sync.models import AssistanceNotice, Subscription
from publishing.sync.services import list_subscriptions, subscription_status
from registry.calendar import china_date, china_midnight, end_of_china_day
from registry.checks.models import CheckLogEntry
from registry.clients.models import ApiClient
from registry.corrections.models import Correction, CorrectionDecision
from registry.courts.models import Court
from registry.listings.wording import SPECIAL_SUBJECTS

# The Chinese a person reads (the dashboard, the CSV) for the codes in a column with this key;
# the JSON keeps the codes, for programs. The sync and checks modules name these in English
# only, so their words are kept here, beside the one place that shows them to people.
PROFILE_NAMES = {
    "credit_reference": "征信系统",
    "housing_construction": "住房城乡建设信用档案",
    "enterprise_supervision": "企业信用分类监管",
    "personnel_oversight": "组织人事部门（特殊主体）",
    "public": "社会公开",
}
MODE_NAMES = {"push": "推送", "pull": "拉取"}
STATE_NAMES = {"active": "正常", "paused": "已暂停", "failing": "推送失败，待处理", "ended": "已终止"}
PURPOSE_NAMES = {
    "loan_application": "新增贷款或授信审批",
    "credit_review": "存量授信复审（续贷、提额）",
    "account_opening": "开立账户",
    "guarantee_review": "担保人或担保审查",
    "post_loan_monitoring": "贷后管理",
    "outbound_payment": "大额对外支付",
}
WORDS: dict[str, Mapping[str, str]] = {
    "profile": PROFILE_NAMES,
    "mode": MODE_NAMES,
    "state": STATE_NAMES,
    "purpose": PURPOSE_NAMES,
}


def shown(key: str, value: Any) -> Any:
    """`value` of column `key` as a person reads it: a code in Chinese (an unknown code as
    itself rather than hidden), a rate as a percentage (the JSON's 1.0 is 100.0%), anything
    else unchanged."""
    if key.endswith("_rate") and isinstance(value, float):
        return f"{value * 100:.1f}%"
    words = WORDS.get(key)
    return words.get(value, value) if words is not None and isinstance(value, str) else value


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # Chinese, as the dashboard shows it


@dataclass
class Section:
    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Scope:
    """Whose figures: every court's (an admin), or one court's (that court's own client)."""

    query: StatisticsQuery
    court: str | None
    now: datetime


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def court_names(conn: Connection) -> dict[str, str]:
    return {code: name for code, name in conn.execute(select(Court.code, Court.name))}


def removal_timeliness(conn: Connection, scope: Scope) -> Section:
    """SPC Art. 10: deletions within three working days, by court (removals in the period)."""
    section = Section(
        "removal_timeliness",
        "删除失信信息及时率（三个工作日内）",
        [
            Column("court", "法院代码"),
            Column("court_name", "法院"),
            Column("removed", "删除数"),
            Column("removed_on_time", "按期删除"),
            Column("removed_late", "逾期删除"),
            Column("on_time_rate", "按期率"),
        ],
        note="按删除生效日期统计；期限自删除条件成就之日起算三个工作日。",
    )
    names = court_names(conn)
    for court, (removed, on_time, late) in removals_by_court(
        conn, scope.query.period, _filters(scope)
    ).items():
        section.rows.append(
            {
                "court": court,
                "court_name": names.get(court, court),
                "removed": removed,
                "removed_on_time": on_time,
                "removed_late": late,
                "on_time_rate": _rate(on_time, on_time + late),
            }
        )
    return section


def notices_by_agency(conn: Connection, scope: Scope) -> Section:
    """Opinion Art. 19-20, 24: assistance notices issued in the period, by agency and profile:
    acknowledged, objected, and overdue (past their deadline with neither)."""
    period = scope.query.period
    notice = AssistanceNotice
    open_notice = and_(notice.acknowledged_at.is_(None), notice.objected_at.is_(None))
    query = (
        select(
            ApiClient.id,
            ApiClient.name,
            Subscription.profile,
            func.count().label("issued"),
            func.count(notice.acknowledged_at).label("acknowledged"),
            func.sum(case((notice.acknowledged_at > notice.due_at, 1), else_=0)).label("acknowledged_late"),
            func.count(notice.objected_at).label("objected"),
            func.sum(case((and_(open_notice, notice.due_at < scope.now), 1), else_=0)).label("overdue"),
        )
        .join(ApiClient, ApiClient.id == notice.client_id)
        .join(Subscription, Subscription.id == notice.subscription_id)
        .where(
            notice.issued_at >= china_midnight(period.start),
            notice.issued_at < end_of_china_day(period.end),
        )
        .group_by(ApiClient.id, ApiClient.name, Subscription.profile)
        .order_by(ApiClient.name, Subscription.profile)
    )
    if scope.court is not None:
        query = query.where(notice.court_code == scope.court)
    section = Section(
        "notices_by_agency",
        "协助执行通知办理情况（按协助单位）",
        [
            Column("agency", "协助单位"),
            Column("profile", "字段配置"),
            Column("issued", "发出"),
            Column("acknowledged", "已回执"),
            Column("acknowledged_late", "逾期回执"),
            Column("objected", "提出审查建议"),
            Column("overdue", "逾期未办理"),
        ],
        note="按通知发出日期统计；逾期未办理：已过办理期限，既未回执也未提出审查建议。",
    )
    for row in conn.execute(query):
        section.rows.append(
            {
                "agency": row.name,
                "profile": row.profile,
                "issued": int(row.issued),
                "acknowledged": int(row.acknowledged),
                "acknowledged_late": int(row.acknowledged_late or 0),
                "objected": int(row.objected),
                "overdue": int(row.overdue or 0),
            }
        )
    return section


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def corrections(conn: Connection, scope: Scope) -> Section:
    """SPC Provisions Art. 9, 11, 12: corrections of the listings of each court, filed (by the
    listed person) or found (by the court itself) in the period: reviewed within 15 days or
    late, reviews overdue now, upheld, reconsiderations asked and decided late or overdue,
    and corrections carried out within three working days or late."""
    period = scope.query.period
    today = china_date(scope.now)
    review = aliased(CorrectionDecision)
    reconsideration = aliased(CorrectionDecision)
    row_ = Correction
    query = (
        select(
            row_.court_code,
            _count(row_.origin == "application").label("filed"),
            _count(row_.origin == "court").label("found"),
            func.count(review.correction_id).label("reviewed"),
            _count(review.on_time.is_(False)).label("reviewed_late"),
            _count(and_(row_.status == "under_review", row_.review_due_on < today)).label("review_overdue"),
            _count(or_(review.outcome == "upheld", reconsideration.outcome == "upheld")).label("upheld"),
            func.count(row_.reconsideration_requested_at).label("reconsideration_asked"),
            _count(
                or_(
                    reconsideration.on_time.is_(False),
                    and_(row_.status == "under_reconsideration", row_.reconsideration_due_on < today),
                )
            ).label("reconsideration_late"),
            func.count(row_.carried_out_at).label("carried_out"),
            _count(row_.carried_out_on_time.is_(False)).label("carried_out_late"),
        )
        .outerjoin(review, and_(review.correction_id == row_.id, review.stage == "review"))
        .outerjoin(
            reconsideration,
            and_(reconsideration.correction_id == row_.id, reconsideration.stage == "reconsideration"),
        )
        .where(row_.filed_on >= period.start, row_.filed_on <= period.end)
        .group_by(row_.court_code)
        .order_by(row_.court_code)
    )
    if scope.court is not None:
        query = query.where(row_.court_code == scope.court)
    section = Section(
        "corrections",
        "纠正申请与复议办理情况（按作出纳入决定的法院）",
        [
            Column("court", "法院代码"),
            Column("court_name", "法院"),
            Column("filed", "当事人申请"),
            Column("found", "法院自行发现"),
            Column("reviewed", "已审查"),
            Column("reviewed_late", "逾期审查"),
            Column("review_overdue", "审查逾期未决"),
            Column("review_on_time_rate", "按期审查率"),
            Column("upheld", "理由成立"),
            Column("reconsideration_asked", "申请复议"),
            Column("reconsideration_late", "复议逾期"),
            Column("carried_out", "已纠正"),
            Column("carried_out_late", "逾期纠正"),
        ],
        note="按申请或发现日期统计；审查期限十五日，复议期限十五日，纠正期限三个工作日（均按法定工作日历计算）。",
    )
    names = court_names(conn)
    for row in conn.execute(query):
        reviewed, late = int(row.reviewed), int(row.reviewed_late or 0)
        section.rows.append(
            {
                "court": row.court_code,
                "court_name": names.get(row.court_code, row.court_code),
                "filed": int(row.filed or 0),
                "found": int(row.found or 0),
                "reviewed": reviewed,
                "reviewed_late": late,
                "review_overdue": int(row.review_overdue or 0),
                "review_on_time_rate": _rate(reviewed - late, reviewed),
                "upheld": int(row.upheld or 0),
                "reconsideration_asked": int(row.reconsideration_asked),
                "reconsideration_late": int(row.reconsideration_late or 0),
                "carried_out": int(row.carried_out),
                "carried_out_late": int(row.carried_out_late or 0),
            }
        )
    return section


def special_subjects(conn: Connection, scope: Scope) -> Section:
    """Opinion Art. 4: how special debtors perform: listed and removed in the period, removed
    because they performed, and active at the period's end, by category."""
    section = Section(
        "special_subjects",
        "特殊主体失信被执行人履行情况",
        [
            Column("label", "类别"),
            Column("listed", "新纳入"),
            Column("removed", "删除"),
            Column("performed", "因履行删除"),
            Column("performed_rate", "履行删除占比"),
            Column("active_end", "期末在册"),
        ],
        note="类别由作出纳入决定的法院认定。",
    )
    # Each row keeps its category's code for the JSON; people read the label.
    counts = special_performance(conn, scope.query.period, _filters(scope))
    for category, label in SPECIAL_SUBJECTS.items():
        listed, removed, performed, active_end = counts.get(category, (0, 0, 0, 0))
        section.rows.append(
            {
                "category": category,
                "label": label,
                "listed": listed,
                "removed": removed,
                "performed": performed,
                "performed_rate": _rate(performed, removed),
                "active_end": active_end,
            }
        )
    return section


def delivery_lag(conn: Connection, scope: Scope) -> Section | None:
    """Opinion Art. 18: how fast each subscription's agency takes up what the courts enter:
    the backlog now and the commit-to-acknowledgement time over its latest acknowledgements.
    Admins only (a subscription is no court's)."""
    if scope.court is not None:
        return None
    section = Section(
        "delivery_lag",
        "协助单位接收时效（按订阅）",
        [
            Column("agency", "协助单位"),
            Column("profile", "字段配置"),
            Column("mode", "方式"),
            Column("state", "状态"),
            Column("backlog", "待接收事件"),
            Column("p50_seconds", "接收用时中位数（秒）"),
            Column("p90_seconds", "接收用时90%分位（秒）"),
        ],
        note="按最近1000次回执计算，与所选期间无关。",
    )
    names = {row.id: row.name for row in conn.execute(select(ApiClient.id, ApiClient.name))}
    for status in (subscription_status(conn, item["id"]) for item in list_subscriptions(conn)):
        latency = status["latency_seconds"]
        section.rows.append(
            {
                "agency": names.get(status["client_id"], status["client_id"]),
                "profile": status["profile"],
                "mode": status["mode"],
                "state": status["state"],
                "backlog": status["backlog"],
                "p50_seconds": latency["p50"],
                "p90_seconds": latency["p90"],
            }
        )
    return section


def bank_checks(conn: Connection, scope: Scope) -> Section | None:
    """Opinion Art. 14: banks query before lending. Subjects checked in the period by purpose,
    and how many were found listed; no bank is named. Admins only."""
    if scope.court is not None:
        return None
    period = scope.query.period
    log = CheckLogEntry
    rows = conn.execute(
        select(
            log.purpose,
            func.count().label("subjects"),
            func.sum(case((log.result == "listed", 1), else_=0)).label("listed"),
        )
        .where(log.checked_at >= china_midnight(period.start), log.checked_at < end_of_china_day(period.end))
        .group_by(log.purpose)
        .order_by(log.purpose)
    )
    section = Section(
        "bank_checks",
        "金融机构查询量（按用途）",
        [Column("purpose", "查询用途"), Column("subjects", "查询主体数"), Column("listed", "其中在名单中")],
        note="按查询时间统计，不列出金融机构名称。",
    )
    for row in rows:
        section.rows.append(
            {"purpose": row.purpose, "subjects": int(row.subjects), "listed": int(row.listed or 0)}
        )
    return section


def _filters(scope: Scope) -> Filters:
    filters = scope.query.filters
    return replace(filters, court=scope.court) if scope.court is not None else filters


# The dashboard's sections, in order. A section may answer None where it does not apply (a
# court's own dashboard).
SECTIONS: list[Callable[[Connection, Scope], Section | None]] = [
    removal_timeliness,
    corrections,
    notices_by_agency,
    special_subjects,
    delivery_lag,
    bank_checks,
]


def oversight(conn: Connection, scope: Scope) -> list[Section]:
    return [section for make in SECTIONS if (section := make(conn, scope)) is not None]
