"""Atom 1.0 and RSS 2.0 (with `feedgen`) and JSON Feed 1.1 (msgspec, to the spec)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec
from feedgen.feed import FeedGenerator

from publishing.feeds.entries import PublicationItem
from registry.listings.disclosure import PublicEntry

FEED_TITLE = "失信被执行人名单：发布与移出 (defaulter list: publications and removals)"
AUTHOR = "Defaulter credit registry"
_EVENT_LABEL = {"published": "发布", "amended": "更正", "removed": "移出", "expired": "期满移出"}
_KIND_LABEL = {"person": "自然人", "organization": "法人或其他组织"}
_PERFORMANCE_LABEL = {"none": "全部未履行", "partial": "部分未履行"}


@dataclass(frozen=True)
class FeedLinks:
    self_url: str
    first_url: str
    next_url: str | None
    home_url: str


def _money(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f} 元"


def _entry_text(entry: PublicEntry) -> str:
    lines = [
        f"被执行人：{entry.name}（{_KIND_LABEL.get(entry.kind, entry.kind)}）",
        f"证件号码：{entry.identifier_masked}",
    ]
    if entry.kind == "person":
        lines.append(f"性别：{entry.sex or ''}  年龄：{entry.age if entry.age is not None else ''}")
    else:
        lines.append(f"法定代表人或负责人：{entry.legal_representative or ''}")
    lines += [
        f"执行法院：{entry.court_name}（{entry.province or ''}）",
        f"案号：{entry.case_number}",
        f"立案时间：{entry.filed_on.isoformat()}",
        f"执行依据文号：{entry.basis_document_number}",
        f"做出执行依据单位：{entry.basis_issuer}",
        f"生效法律文书确定的义务：{entry.obligations}",
        f"履行情况：{_PERFORMANCE_LABEL.get(entry.performance.status, entry.performance.status)}"
        + (
            f"，未履行 {_money(entry.performance.unperformed_cents)}"
            if entry.performance.unperformed_cents
            else ""
        ),
        f"失信行为情形：{', '.join(entry.grounds)}",
        f"发布时间：{entry.published_on.isoformat()}",
    ]
    return "\n".join(lines)


def item_title(item: PublicationItem) -> str:
    label = _EVENT_LABEL[item.event]
    who = item.entry or item.removal
    assert who is not None
    return f"{label}：{who.name}（{who.case_number}）"


def item_text(item: PublicationItem) -> str:
    if item.entry is not None:
        return _entry_text(item.entry)
    notice = item.removal
    assert notice is not None
    return "\n".join(
        [
            f"被执行人：{notice.name}（{_KIND_LABEL.get(notice.kind, notice.kind)}）",
            f"执行法院：{notice.court_name}（{notice.province or ''}）",
            f"案号：{notice.case_number}",
            f"移出原因：{notice.reason}",
            f"移出日期：{notice.effective_on.isoformat()}",
        ]
    )


def item_id(item: PublicationItem) -> str:
    # One id per event: a listing's publication and its removal are distinct entries.
    return f"urn:defaulter-registry:event:{item.seq}"


def _generator(
    items: list[PublicationItem], links: FeedLinks, updated: datetime, *, rss: bool
) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(links.first_url)
    fg.title(FEED_TITLE)
    fg.author({"name": AUTHOR})
    fg.description("Court-certified listings of judgment debtors who refuse to perform, and their removals.")
    fg.language("zh-CN")
    fg.updated(updated)
    fg.link(href=links.self_url, rel="self")
    fg.link(href=links.first_url, rel="first")
    if links.next_url is not None:
        fg.link(href=links.next_url, rel="next")
    fg.link(href=links.home_url, rel="alternate")  # last: feedgen takes RSS's <link> from it
    for item in items:
        fe = fg.add_entry(order="append")
        fe.id(item_id(item))
        fe.guid(item_id(item), permalink=False)
        fe.title(item_title(item))
        fe.updated(item.occurred_at)
        fe.published(item.occurred_at)
        if rss:
            fe.description(item_text(item))
        else:
            fe.content(item_text(item), type="text")
        fe.category(term=item.event, label=_EVENT_LABEL[item.event])
    return fg


def atom(items: list[PublicationItem], links: FeedLinks, updated: datetime) -> bytes:
    result: bytes = _generator(items, links, updated, rss=False).atom_str(pretty=False)
    return result


def rss(items: list[PublicationItem], links: FeedLinks, updated: datetime) -> bytes:
    result: bytes = _generator(items, links, updated, rss=True).rss_str(pretty=False)
    return result


class JsonFeedAuthor(msgspec.Struct):
    name: str


class JsonFeedItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    title: str
    content_text: str
    date_published: datetime
    tags: list[str]
    # JSON Feed extensions start with an underscore: the structured public data.
    registry: PublicationItem = msgspec.field(name="_registry")


class JsonFeed(msgspec.Struct, kw_only=True, omit_defaults=True):
    version: str  # required by the spec: no default, so never omitted
    title: str
    home_page_url: str
    feed_url: str
    next_url: str | None = None
    language: str
    authors: list[JsonFeedAuthor]
    items: list[JsonFeedItem]


def json_feed(items: list[PublicationItem], links: FeedLinks) -> bytes:
    feed = JsonFeed(
        version="https://jsonfeed.org/version/1.1",
        language="zh-CN",
        title=FEED_TITLE,
        home_page_url=links.home_url,
        feed_url=links.self_url,
        next_url=links.next_url,
        authors=[JsonFeedAuthor(AUTHOR)],
        items=[
            JsonFeedItem(
                id=item_id(item),
                title=item_title(item),
                content_text=item_text(item),
                date_published=item.occurred_at,
                tags=[item.event],
                registry=item,
            )
            for item in items
        ],
    )
    return msgspec.json.encode(feed)
