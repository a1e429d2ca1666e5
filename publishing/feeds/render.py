"""Atom 1.0 and RSS 2.0 (with `feedgen`) and JSON Feed 1.1 (msgspec, to the spec).

Titles and texts are Chinese in the Provisions' wording (`registry.listings.wording`);
the JSON feed's `_registry` part keeps the codes. One entry that cannot be rendered is left
out of the page (and logged by its sequence number), never the whole feed.

Court-supplied text is text in every format: Atom says so (`type="text"`, its default for
titles), JSON Feed carries `content_text`; RSS 2.0's `<description>` is HTML by convention,
so its text is HTML-escaped (then XML-escaped by feedgen) and line breaks become `<br/>`: a
reader shows `<img src=x onerror=…>` as those characters and never renders it.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime

import msgspec
from feedgen.feed import FeedGenerator

from publishing.feeds.entries import PublicationItem
from registry.identity.types import ID_TYPE_NAMES
from registry.listings.disclosure import PublicEntry
from registry.listings.wording import (
    KIND,
    PERFORMANCE,
    REMOVAL_REASONS,
    SEX,
    cn_date,
    grounds_text,
    identifier_text,
    label,
    removal_date_label,
    yuan,
)

FEED_TITLE = "失信被执行人名单：发布与移出"
FEED_DESCRIPTION = "人民法院依法公布的失信被执行人名单信息，及其更正与移出。"
AUTHOR = "失信被执行人名单信息公布系统"
_EVENT_LABEL = {"published": "发布", "amended": "更正", "removed": "移出", "expired": "期满移出"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedLinks:
    self_url: str
    first_url: str
    next_url: str | None
    home_url: str


def _performance_text(entry: PublicEntry) -> str:
    perf = entry.performance
    text = f"履行情况：{label(PERFORMANCE, perf.status)}"
    if perf.performed_cents:
        text += f"，已履行 {yuan(perf.performed_cents)}"
    if perf.unperformed_cents:
        text += f"，未履行 {yuan(perf.unperformed_cents)}"
    return text


NOT_GIVEN = "—"


def _entry_text(entry: PublicEntry) -> str:
    lines = [
        f"被执行人：{entry.name}（{label(KIND, entry.kind)}）",
        f"{ID_TYPE_NAMES.get(entry.id_type, '证件号码')}："
        + identifier_text(entry.id_type, entry.identifier_masked),
    ]
    # A field the entry does not have reads "—", as on the entry's page, not an empty label.
    if entry.kind == "person":
        age = f"{entry.age_at_publication}岁" if entry.age_at_publication is not None else NOT_GIVEN
        lines.append(f"性别：{label(SEX, entry.sex) or NOT_GIVEN}　公布时年龄：{age}")
    else:
        lines.append(f"法定代表人或负责人：{entry.legal_representative or NOT_GIVEN}")
    lines += [
        f"执行法院：{entry.court_name}" + (f"（{entry.province}）" if entry.province else ""),
        f"案号：{entry.case_number}",
        f"立案时间：{cn_date(entry.filed_on)}",
        f"执行依据文号：{entry.basis_document_number}",
        f"做出执行依据单位：{entry.basis_issuer}",
        f"生效法律文书确定的义务：{entry.obligations}",
    ]
    if entry.amount_cents is not None:
        lines.append(f"执行标的：{yuan(entry.amount_cents)}")
    lines += [
        _performance_text(entry),
        f"失信被执行人行为具体情形：{grounds_text(entry.grounds)}",
        f"发布时间：{cn_date(entry.published_on)}",
    ]
    return "\n".join(lines)


def item_title(item: PublicationItem) -> str:
    label_ = _EVENT_LABEL[item.event]
    if item.entry is not None:
        return f"{label_}：{item.entry.name} {item.entry.case_number}"
    notice = item.removal
    assert notice is not None
    # A removed entry is named by its case number only: not the person again.
    return f"{label_}：{notice.case_number}"


def item_text(item: PublicationItem) -> str:
    if item.entry is not None:
        return _entry_text(item.entry)
    notice = item.removal
    assert notice is not None
    return "\n".join(
        [
            f"案号：{notice.case_number}",
            f"执行法院：{notice.court_name}" + (f"（{notice.province}）" if notice.province else ""),
            f"移出原因：{label(REMOVAL_REASONS, notice.reason)}",
            f"{removal_date_label(notice.reason, '移出日期')}：{cn_date(notice.effective_on)}",
        ]
    )


def rss_description(text: str) -> str:
    """RSS readers render `<description>` as HTML: the text, escaped as HTML, lines kept."""
    return "<br/>".join(html.escape(line, quote=False) for line in text.split("\n"))


def item_id(item: PublicationItem) -> str:
    """One id per listing, whatever its latest event: feed readers keep what they fetched by
    entry id (RFC 4287 4.2.6, JSON Feed's `id`), so an amendment or a removal must replace the
    entry a reader holds. With one id per event, a reader kept the published entry (the name,
    the number) beside the removal notice for good."""
    listing_id = item.entry.id if item.entry is not None else item.removal.id if item.removal else None
    assert listing_id is not None
    return f"urn:defaulter-registry:listing:{listing_id}"


def first_published(item: PublicationItem) -> datetime | None:
    # Only a publication's time is the entry's publication; a later event updates it.
    return item.occurred_at if item.event == "published" else None


def _generator(
    items: list[PublicationItem], links: FeedLinks, updated: datetime, *, rss: bool
) -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(links.first_url)
    fg.title(FEED_TITLE)
    fg.author({"name": AUTHOR})
    fg.description(FEED_DESCRIPTION)
    fg.language("zh-CN")
    fg.updated(updated)
    fg.link(href=links.self_url, rel="self")
    fg.link(href=links.first_url, rel="first")
    if links.next_url is not None:
        fg.link(href=links.next_url, rel="next")
    fg.link(href=links.home_url, rel="alternate")  # last: feedgen takes RSS's <link> from it
    for item in items:
        fe = fg.add_entry(order="append")
        try:
            fe.id(item_id(item))
            fe.guid(item_id(item), permalink=False)
            fe.title(item_title(item))
            fe.updated(item.occurred_at)
            if (published := first_published(item)) is not None:
                fe.published(published)
            if rss:
                fe.description(rss_description(item_text(item)))
            else:
                fe.content(item_text(item), type="text")
            fe.category(term=item.event, label=_EVENT_LABEL[item.event])
            # Serialise the entry alone now: what XML cannot hold fails here, not the feed.
            if rss:
                fe.rss_entry()
            else:
                fe.atom_entry()
        except (ValueError, TypeError) as exc:
            fg.remove_entry(fe)
            log.warning("feed entry of event %d left out: %s", item.seq, type(exc).__name__)
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
    date_published: datetime | None = None
    date_modified: datetime
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
                date_published=first_published(item),
                date_modified=item.occurred_at,
                tags=[_EVENT_LABEL[item.event]],  # in words, as the Atom category's label
                registry=item,
            )
            for item in items
        ],
    )
    return msgspec.json.encode(feed)
