"""Assistance notices (2010 Opinion Art. 19-21, 24), generated from the event log.

A reader of the event log (`notice_reader`, cursor `sync.notices`) turns each listing and
each removal into one notice per subscription whose profile covers the debtor.
Notices hold references only; the debtor is rendered through the subscription's profile
when the notice is read, so a notice never shows an agency more than its profile allows.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, cast

import msgspec
from sqlalchemy import Connection, Table, func, select, tuple_, update

from publishing.sync.models import AssistanceNotice, Subscription
from publishing.sync.profiles import admitted_at, enters_scope, leaves_scope, load_listings, render
from publishing.sync.services import ACTIVE_CLIENTS, profile_of, readable
from registry.bulk import bulk_insert
from registry.calendar import (
    CHINA_TIME,
    add_working_days,
    china_date,
    end_of_china_day,
    first_uncovered_day,
)
from registry.eventlog.readers import LogEvent, LogReader
from registry.eventlog.services import EventDraft, append_events, lock_head
from registry.eventlog.types import LISTING_EVENTS, REMOVAL_EVENTS, EventType
from registry.identity.crypto import DataKeyring
from registry.identity.types import ID_TYPE_NAMES
from registry.ids import ID_PATTERN, new_id
from registry.listings.wording import (
    KIND,
    PERFORMANCE,
    REMOVAL_REASONS,
    SEX,
    SPECIAL_SUBJECTS,
    china_time,
    cn_date,
    grounds_text,
    identifier_text,
    label,
    yuan,
)
from registry.problems import Problem
from registry.timeutil import as_utc, iso

CURSOR = "sync.notices"
# The scheduler job that runs this reader (`publishing.sync.plugin`).
JOB = "assistance_notices"
NOTICES = cast(Table, AssistanceNotice.__table__)
MAX_OBJECTION_CHARS = 4000
NOTICE_ID_PREFIX = "an_"
NOTICE_ID = re.compile(NOTICE_ID_PREFIX + ID_PATTERN.pattern.lower(), re.ASCII)

# What each kind of agency is asked to do (Art. 12, 13, 17; Art. 3 for the press), and to undo (Art. 21).
MEASURES: dict[str, list[str]] = {
    "credit_reference": ["将被执行人的未履行信息纳入企业和个人信用信息基础数据库（第十三条）"],
    "housing_construction": [
        "将被执行人记入住房和城乡建设领域信用档案（第十二条）",
        "限制被执行人办理房地产交易、产权转移等手续（第十二条）",
    ],
    "enterprise_supervision": [
        "将被执行人纳入企业信用分类监管系统（第十七条）",
        "被执行人为自然人的，依法限制其担任公司的董事、监事、高级管理人员（《中华人民共和国公司法》第一百七十八条）",
    ],
    "personnel_oversight": [
        "了解掌握该特殊主体拒不履行生效法律文书的情况，通过诫勉谈话、函询等形式督促其及时改正，并依照有关规定处理（第二条）",
        "将特殊主体履行债务情况纳入考核范围（第四条）",
    ],
    "public": ["公布失信被执行人名单信息（第三条）"],
}
LIFT_MEASURE = "解除依前次协助执行通知采取的上述措施（第二十一条）"


def issue_notices(conn: Connection, events: Sequence[LogEvent], now: datetime, *, deadline_days: int) -> None:
    """One notice per listing or removal and per subscription whose profile covers the debtor.
    An amendment asks no agency to act anew, except the ones that add or drop a special-subject
    mark: the personnel-oversight agencies act from the first (Art. 2, 4) and lift what they did
    at the second (Art. 21), as for a removal."""
    subs = conn.execute(
        select(Subscription.id, Subscription.client_id, Subscription.profile).where(
            Subscription.state.in_(("active", "failing")), Subscription.client_id.in_(ACTIVE_CLIENTS)
        )
    ).all()
    rows = load_listings(conn, (e.listing_id for e in events if e.listing_id)) if subs else {}
    # Due at the end of the deadline's last working day, counted from the day of issue.
    due_at = end_of_china_day(add_working_days(china_date(now), deadline_days).due)
    notices = []
    for event in events:
        listing = rows.get(event.listing_id) if event.listing_id is not None else None
        if listing is None:
            continue
        for sub in subs:
            profile = profile_of(sub.profile)
            version = event.listing_version
            left = leaves_scope(profile, event.type, version, listing)
            if event.type == EventType.LISTING_AMENDED and not (
                left or enters_scope(profile, event.type, version, listing)
            ):
                continue
            # The listing as it was at the event: a reader running late must neither lift
            # what it never imposed nor impose twice for a mark added later.
            if not (left or admitted_at(profile, version, listing)):
                continue
            notices.append(
                {
                    "id": NOTICE_ID_PREFIX + new_id().lower(),
                    "subscription_id": sub.id,
                    "client_id": sub.client_id,
                    "listing_id": listing.id,
                    "listing_version": event.listing_version,
                    "court_code": listing.court_code,
                    "kind": "lift" if left or event.type in REMOVAL_EVENTS else "impose",
                    "seq": event.seq,
                    "issued_at": now,
                    "due_at": due_at,
                }
            )
    # Through the driver (registry.bulk): one notice per event and subscription, and
    # SQLAlchemy's per-row parameter building was half of this reader's time.
    bulk_insert(conn, NOTICES, notices)


def notice_reader(deadline_days: int) -> LogReader:
    return LogReader(CURSOR, partial(issue_notices, deadline_days=deadline_days), LISTING_EVENTS)


NO_SUCH_NOTICE = "you have no notice with this id"


def _notice(conn: Connection, notice_id: str, *, lock: bool = False) -> Any:
    query = select(NOTICES).where(NOTICES.c.id == notice_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise Problem(404, "notice_not_found", NO_SUCH_NOTICE)
    return row


def _owned(conn: Connection, notice_id: str, client_id: str, *, lock: bool = False) -> Any:
    row = _notice(conn, notice_id, lock=lock)
    if row.client_id != client_id:
        # Someone else's notice: not confirmed to exist (the same answer as an unknown id).
        raise Problem(404, "notice_not_found", NO_SUCH_NOTICE)
    return row


def _summary(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "subscription_id": row.subscription_id,
        "listing_id": row.listing_id,
        "listing_version": row.listing_version,
        "court_code": row.court_code,
        "kind": row.kind,
        "issued_at": iso(row.issued_at),
        "due_at": iso(row.due_at),
        "acknowledged_at": iso(row.acknowledged_at) if row.acknowledged_at else None,
        "objection": row.objection,
        "objected_at": iso(row.objected_at) if row.objected_at else None,
        "overdue": row.acknowledged_at is None and as_utc(row.due_at) < now,
    }


def read_notice(
    conn: Connection, notice_id: str, client_id: str, keyring: DataKeyring, today: date, now: datetime
) -> dict[str, Any]:
    """The full notice: court, case, the debtor through the subscription's profile, measures.
    Refused while the subscription is paused or ended, like every read of the profile's data."""
    row = _owned(conn, notice_id, client_id)
    sub = conn.execute(
        select(Subscription.profile, Subscription.state).where(Subscription.id == row.subscription_id)
    ).one()
    readable(sub)
    profile_name = sub.profile
    listing = load_listings(conn, [row.listing_id])[row.listing_id]
    record = render(profile_of(profile_name), listing, keyring, today)
    measures = MEASURES[profile_name] if row.kind == "impose" else [LIFT_MEASURE]
    return _summary(row, now) | {
        "title": "协助执行通知书" if row.kind == "impose" else "解除协助执行通知书",
        "legal_basis": "法发〔2010〕15号 第十九条" if row.kind == "impose" else "法发〔2010〕15号 第二十一条",
        "court_name": listing.court_name,
        "case_number": listing.case_number,
        "profile": profile_name,
        "debtor": msgspec.to_builtins(record) if record is not None else None,
        "measures": measures,
    }


# The printable notice is read by people: each field in the Provisions' words (Art. 6).
_FIELDS = {
    "id": "名单编号", "version": "版本", "status": "状态", "kind": "被执行人类型",
    "name": "被执行人姓名或名称", "identifier": "证件号码", "credit_code": "统一社会信用代码",
    "identifier_masked": "证件号码（部分隐去）", "sex": "性别", "age_at_publication": "公布时年龄",
    "id_type": "证件类型", "birth_date": "出生日期",
    "legal_representative": "法定代表人或者负责人", "court_code": "执行法院代码", "court_name": "执行法院",
    "province_code": "省份代码", "province": "省份", "case_number": "案号",
    "basis_document_number": "执行依据文号", "basis_issuer": "做出执行依据单位",
    "obligations": "生效法律文书确定的义务", "amount_cents": "执行标的", "performance": "履行情况",
    "grounds": "失信被执行人行为具体情形", "filed_on": "立案时间", "listed_on": "纳入名单日期",
    "published_on": "发布时间", "term_years": "纳入期限（年）", "expires_on": "期满日期", "removal": "移出",
    "id_number": "身份证号码", "special_subject": "特殊主体类别", "employer": "工作单位或上级主管部门",
}  # fmt: skip
_STATUS = {"active": "在名单中", "removed": "已移出", "expired": "期满移出"}
_CODES: dict[str, dict[str, str]] = {
    "sex": SEX,
    "kind": KIND,
    "status": _STATUS,
    "special_subject": SPECIAL_SUBJECTS,
    "id_type": ID_TYPE_NAMES,
}
_IDENTIFIERS = frozenset({"identifier", "identifier_masked", "id_number", "credit_code"})
# A profile's identifier field beside its `id_type`: the number of that document (a passport's,
# a foreign registration's), not always a 身份证号码 or a 统一社会信用代码.
_NUMBER_OF_ID_TYPE = frozenset({"id_number", "credit_code"})
# The print is a page of its own: its inline style and nothing else.
PRINT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_DATES = frozenset({"birth_date", "filed_on", "listed_on", "published_on", "expires_on"})


def render_html(notice: dict[str, Any]) -> str:
    """A printable page in Chinese, times in China time. Every value is escaped; the debtor
    block shows the profile's fields only."""
    e = html.escape
    debtor = notice["debtor"] or {}
    debtor_rows = "".join(
        f"<tr><th>{e(_label(k, debtor))}</th><td>{e(_words(k, v, debtor))}</td></tr>"
        for k, v in debtor.items()
        if v is not None
    )
    measures = "".join(f"<li>{e(m)}</li>" for m in notice["measures"])
    objection = (
        f"<section><h2>异议（第二十条）</h2><p>{e(notice['objection'])}</p>"
        "<p>异议已转交执行法院；异议期间不停止协助执行。</p></section>"
        if notice["objection"]
        else ""
    )
    issued = china_time(datetime.fromisoformat(notice["issued_at"]))
    due = _by_end_of(datetime.fromisoformat(notice["due_at"]))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(notice["title"])} {e(notice["id"])}</title>
<style>body{{font-family:serif;max-width:42em;margin:2em auto}}th{{text-align:left;padding-right:1em}}
@media print{{a{{display:none}}}}</style></head><body>
<h1>{e(notice["court_name"])}</h1><h2>{e(notice["title"])}</h2>
<p>案号：{e(notice["case_number"])}　　通知编号：{e(notice["id"])}</p>
<p>依据：{e(notice["legal_basis"])}　　发出：{e(issued)}　　请于 {e(due)} 前回执</p>
<h3>被执行人</h3>{_as_read(notice, debtor)}<table>{debtor_rows}</table>
<h3>请求协助事项</h3><ol>{measures}</ol>{objection}
</body></html>
"""


def _label(field: str, debtor: dict[str, Any]) -> str:
    if field in _NUMBER_OF_ID_TYPE and debtor.get("id_type") not in (None, field, "resident_id"):
        return "证件号码"
    return _FIELDS.get(field, field)


def _by_end_of(due: datetime) -> str:
    """A deadline at the end of a China day reads as that day's 24:00, not the next day's
    00:00 (which names a day the agency is not given, often a Saturday)."""
    local = due.astimezone(CHINA_TIME)
    if local.time() == time(0):
        return f"{cn_date(local.date() - timedelta(days=1))} 24:00（北京时间）"
    return china_time(due)


def _as_read(notice: dict[str, Any], debtor: dict[str, Any]) -> str:
    """The debtor is shown as the listing stands when the notice is read (a court's later
    correction is what the agency must hold): said so when that is no longer the version the
    notice was issued for, or when the listing has left the agency's view."""
    if not debtor:
        return (
            "<p>该名单信息现已不在本机构可查阅的范围内（已移出名单，或不再属于本类主体），"
            "不再显示被执行人信息。</p>"
        )
    notes = []
    version = debtor.get("version")
    if version is not None and version != notice["listing_version"]:
        notes.append(
            f"本通知依据名单信息第 {notice['listing_version']} 版发出；"
            f"以下为查阅时的名单信息（第 {version} 版）。"
        )
    if notice["kind"] == "impose" and debtor.get("status") not in (None, "active"):
        notes.append("该被执行人现已移出名单，请依解除协助执行通知书办理。")
    return "".join(f"<p>{html.escape(note)}</p>" for note in notes)


def _words(field: str, value: Any, debtor: dict[str, Any]) -> str:
    """A profile field's value as people read it: codes in words, amounts in 元, dates in China,
    a passport's country by name."""
    if field in _IDENTIFIERS and "id_type" in debtor:
        return identifier_text(debtor["id_type"], value)
    if field in _CODES:
        return label(_CODES[field], value)
    if field == "grounds":
        return grounds_text(value)
    if field == "amount_cents":
        return yuan(value)
    if field in _DATES:
        return cn_date(date.fromisoformat(value))
    if field == "performance":
        text = label(PERFORMANCE, value["status"])
        for key, words in (("performed_cents", "已履行"), ("unperformed_cents", "未履行")):
            if value.get(key):
                text += f"，{words} {yuan(value[key])}"
        return text
    if field == "removal":
        removed_on = value.get("removed_on")
        when = f"，{cn_date(date.fromisoformat(removed_on))}" if removed_on else ""
        return label(REMOVAL_REASONS, value["reason"]) + when
    return str(value)


def provisional_notice_deadlines(conn: Connection) -> list[date]:
    """Last days of notices due on a year the working-day calendar does not cover yet."""
    start = end_of_china_day(first_uncovered_day())  # due at the end of a day of that year
    rows = conn.execute(select(NOTICES.c.due_at).where(NOTICES.c.due_at >= start)).scalars()
    return [china_date(as_utc(due) - timedelta(microseconds=1)) for due in rows]


PAGE_MAX = 1000


def list_notices(
    conn: Connection,
    client_id: str,
    now: datetime,
    *,
    after: str = "",
    limit: int = PAGE_MAX,
    open_only: bool = False,
) -> list[dict[str, Any]]:
    """An agency's notices in the order they were issued, a page at a time: `after` is the
    last notice id of the previous page (one of this agency's: another's is refused as an
    unknown one is, confirming nothing). `open_only`: those not yet acknowledged."""
    query = select(NOTICES).where(NOTICES.c.client_id == client_id)
    if after:
        start = conn.execute(
            select(NOTICES.c.seq).where(NOTICES.c.id == after, NOTICES.c.client_id == client_id)
        ).scalar_one_or_none()
        if start is None:
            raise _not_a_page_cursor()
        query = query.where(tuple_(NOTICES.c.seq, NOTICES.c.id) > tuple_(start, after))
    if open_only:
        query = query.where(NOTICES.c.acknowledged_at.is_(None))
    rows = conn.execute(query.order_by(NOTICES.c.seq, NOTICES.c.id).limit(limit))
    return [_summary(row, now) for row in rows]


def _not_a_page_cursor() -> Problem:
    return Problem(
        400,
        "invalid_parameter",
        "after is a notice id from the previous page (the last one)",
        pointer="/query/after",
    )


def acknowledge_notice(
    conn: Connection, notice_id: str, client_id: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Idempotent: the first acknowledgement's time and event stand."""
    row = _locked(conn, notice_id, client_id)
    if row.acknowledged_at is None:
        conn.execute(
            update(AssistanceNotice).where(AssistanceNotice.id == notice_id).values(acknowledged_at=now)
        )
        append_events(conn, [_event(EventType.NOTICE_ACKNOWLEDGED, actor, row)], now)
    return _summary(_notice(conn, notice_id), now)


def object_to_notice(
    conn: Connection, notice_id: str, client_id: str, text: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Art. 20: recorded and routed to the court; the measure stands (the notice stays owed)."""
    # Kept as the agency wrote it (full-width punctuation, ①) for the court to read; folded
    # only to tell that it says something.
    text = text.strip()
    if not unicodedata.normalize("NFKC", text).strip() or len(text) > MAX_OBJECTION_CHARS:
        raise Problem(
            422, "invalid_objection", f"give the objection's reasons, 1 to {MAX_OBJECTION_CHARS} characters",
            pointer="/text",
        )  # fmt: skip
    row = _locked(conn, notice_id, client_id)
    if row.objection is not None:
        raise Problem(409, "already_objected", "an objection to this notice is already on record")
    conn.execute(
        update(AssistanceNotice)
        .where(AssistanceNotice.id == notice_id)
        .values(objection=text, objected_at=now)
    )
    append_events(conn, [_event(EventType.NOTICE_OBJECTED, actor, row)], now)
    return _summary(_notice(conn, notice_id), now)


def _locked(conn: Connection, notice_id: str, client_id: str) -> Any:
    """The notice, once no other answer to it can commit: a client retrying after a timeout
    answers again at once, and each call must see the first one's answer. The log head first
    (the one lock order: both answers append an event), then the notice's row."""
    lock_head(conn)
    return _owned(conn, notice_id, client_id, lock=True)


def _event(kind: EventType, actor: str, row: Any) -> EventDraft:
    # The objection text stays out of the log: it may quote the debtor.
    return EventDraft(
        kind, actor, court_code=row.court_code, listing_id=row.listing_id,
        listing_version=row.listing_version, data={"notice_id": row.id, "kind": row.kind},
    )  # fmt: skip


def court_objections(conn: Connection, court_code: str | None, now: datetime) -> list[dict[str, Any]]:
    """Objections on a court's listings (every court's for an admin), oldest first."""
    query = select(NOTICES).where(NOTICES.c.objection.is_not(None)).order_by(NOTICES.c.objected_at)
    if court_code is not None:
        query = query.where(NOTICES.c.court_code == court_code)
    return [_summary(row, now) | {"client_id": row.client_id} for row in conn.execute(query)]


def count_notices(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(NOTICES)).scalar_one())


def overdue_notices(
    conn: Connection, now: datetime, *, after: str = "", limit: int = PAGE_MAX
) -> list[dict[str, Any]]:
    """Unacknowledged past their deadline, the longest overdue first, a page at a time
    (`after`: the last notice id of the previous page): for escalation (Art. 24)."""
    query = select(NOTICES).where(NOTICES.c.acknowledged_at.is_(None), NOTICES.c.due_at < now)
    if after:
        start = conn.execute(select(NOTICES.c.due_at).where(NOTICES.c.id == after)).scalar_one_or_none()
        if start is None:
            raise _not_a_page_cursor()
        query = query.where(tuple_(NOTICES.c.due_at, NOTICES.c.id) > tuple_(start, after))
    rows = conn.execute(query.order_by(NOTICES.c.due_at, NOTICES.c.id).limit(limit))
    return [_summary(row, now) | {"client_id": row.client_id} for row in rows]
