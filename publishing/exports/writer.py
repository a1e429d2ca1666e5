"""Daily signed bulk exports: the full public list, the day's changes, a signed manifest.

One read transaction gives one snapshot (SQLite WAL read transaction; REPEATABLE READ on
PostgreSQL), so the list, the changes and the log position in the manifest agree. Rows
are streamed from a server-side cursor and written through gzip as they come: memory does
not grow with the list. Files are written in a temporary folder and swapped in whole.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import multiprocessing
import os
import queue
import shutil
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import msgspec
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import aliased

from publishing.feeds.entries import PublicationItem, build_items, plain_rows
from publishing.feeds.reader import publication_event
from registry import progress
from registry.calendar import china_date, china_midnight
from registry.csvsafe import Writer
from registry.db import create_sync_engine
from registry.eventlog.models import Event
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS, EventType
from registry.identity.registry_key import RAW_CONTEXTS, Domain, RegistrySigner
from registry.identity.types import ID_TYPE_NAMES
from registry.listings.disclosure import PublicEntry, public_columns, public_entry
from registry.listings.models import Listing
from registry.listings.wording import KIND, PERFORMANCE, SEX, grounds_text, identifier_text, label
from registry.readerpool import kill_workers, shutdown_within
from registry.timeutil import iso

LISTINGS_JSONL = "listings.jsonl.gz"
LISTINGS_CSV = "listings.csv.gz"
CHANGES_JSONL = "changes.jsonl.gz"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
WITHDRAWN = "withdrawn.json"
DATA_FILES = (LISTINGS_JSONL, LISTINGS_CSV, CHANGES_JSONL)
FILE_NAMES = (*DATA_FILES, MANIFEST, SIGNATURE)
STREAM_ROWS = 1000
# What makes an export's content out of date: a listing it holds corrected (Art. 9) or
# leaving the list (Art. 10). A publication since does not: an export is the list as it stood.
CHANGING_EVENTS = LISTING_EVENTS - {EventType.LISTING_PUBLISHED}
# How long the change file's process has once the list is written; then it is killed and
# the file written here: it only saves time, and a stuck one must not stop the day's export
# (a singleton job, which would not run again).
HELPER_GRACE_SECONDS = 600.0
logger = logging.getLogger("publishing.exports")
# The CSV is read by people: Chinese headers in the Provisions' words (Art. 6), sex, grounds
# and performance in words, amounts in 元, dates in China. The JSON Lines file keeps the codes.
CSV_COLUMNS = (
    "编号", "被执行人类型", "被执行人姓名或名称", "性别", "公布时年龄", "证件类型", "证件号码（部分隐去）",
    "法定代表人或者负责人", "执行法院代码", "执行法院", "省份", "案号", "执行依据文号",
    "做出执行依据单位", "生效法律文书确定的义务", "执行标的（元）", "履行情况", "已履行（元）",
    "未履行（元）", "失信被执行人行为具体情形", "立案时间", "发布时间",
)  # fmt: skip


class _Digest(io.RawIOBase):
    """A file that hashes and counts what gzip writes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target, self.sha256, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sha256.update(chunk)
        self.size += len(chunk)
        self.target.write(chunk)
        return len(chunk)


class _Output:
    """One gzip file written by its own thread: zlib releases the GIL, so compression runs
    on the other core while this one builds entries. The queue is short, so memory holds
    a few chunks at most."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name, self.rows = name, 0
        self._raw = (folder / name).open("wb")
        self._digest = _Digest(self._raw)
        # mtime=0 and no file name: the same rows give the same bytes.
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._digest, mtime=0, compresslevel=6)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"export-{name}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._gz.write(chunk)
                except BaseException as exc:  # re-raised by close(), in the exporting thread
                    self._failure = exc

    def write(self, chunk: bytes, rows: int) -> None:
        self._queue.put(chunk)
        self.rows += rows

    def close(self) -> dict[str, Any]:
        self._queue.put(None)
        self._thread.join()
        self._gz.close()
        self._raw.close()
        if self._failure is not None:
            raise self._failure
        return {
            "name": self.name,
            "bytes": self._digest.size,
            "sha256": self._digest.sha256.hexdigest(),
            "rows": self.rows,
        }


def _yuan(cents: int | None) -> str:
    return "" if cents is None else f"{cents // 100}.{cents % 100:02d}"


def _csv_row(entry: PublicEntry) -> list[Any]:
    perf = entry.performance
    return [
        entry.id, label(KIND, entry.kind), entry.name, label(SEX, entry.sex), entry.age_at_publication,
        label(ID_TYPE_NAMES, entry.id_type), identifier_text(entry.id_type, entry.identifier_masked),
        entry.legal_representative,
        entry.court_code, entry.court_name, entry.province, entry.case_number,
        entry.basis_document_number, entry.basis_issuer, entry.obligations, _yuan(entry.amount_cents),
        label(PERFORMANCE, perf.status),
        _yuan(perf.performed_cents), _yuan(perf.unperformed_cents), grounds_text(entry.grounds),
        entry.filed_on.isoformat(), entry.published_on.isoformat(),
    ]  # fmt: skip


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = china_midnight(day)
    return start, start + timedelta(days=1)


def _changes(conn: Connection, day: date, position: int, today: date) -> Iterator[list[PublicationItem]]:
    start, end = day_bounds(day)
    result = conn.execute(
        select(Event.seq, Event.type, Event.occurred_at, Event.listing_id, Event.data)
        .where(
            Event.occurred_at >= start,
            Event.occurred_at < end,
            Event.seq <= position,
            Event.type.in_(sorted(LISTING_EVENTS)),
        )
        .order_by(Event.seq)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for chunk in result.partitions():
        rows = [
            _ChangeRow(
                seq=row.seq,
                listing_id=row.listing_id,
                event=publication_event(row.type),
                occurred_at=row.occurred_at,
                reason=row.data.get("reason"),
                effective_on=date.fromisoformat(row.data["effective_on"])
                if "effective_on" in row.data
                else None,
            )
            for row in chunk
        ]
        yield build_items(conn, rows, today)


@dataclass(frozen=True)
class _ChangeRow:
    seq: int
    listing_id: str
    event: str
    occurred_at: datetime
    reason: str | None
    effective_on: date | None


def _csv_bytes(rows: Iterable[list[Any]]) -> bytes:
    text = io.StringIO(newline="")
    # Court-supplied text could begin like a formula: every cell neutralised (registry.csvsafe).
    Writer(text).writerows(rows)
    return text.getvalue().encode()


def _count_changes(conn: Connection, day: date, position: int) -> int:
    start, end = day_bounds(day)
    return int(
        conn.execute(
            select(func.count())
            .select_from(Event)
            .where(
                Event.occurred_at >= start,
                Event.occurred_at < end,
                Event.seq <= position,
                Event.type.in_(sorted(LISTING_EVENTS)),
            )
        ).scalar_one()
    )


def _write_changes(conn: Connection, output: _Output, day: date, position: int, today: date) -> None:
    encoder = msgspec.json.Encoder()
    for items in _changes(conn, day, position, today):
        output.write(b"".join(encoder.encode(item) + b"\n" for item in items), len(items))


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A connection in one read transaction: one snapshot for every statement."""
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn:
        if engine.dialect.name == "sqlite":
            # One pass over everything: a large page cache would only grow with the list.
            conn.exec_driver_sql("PRAGMA cache_size=-8192")
            conn.commit()
        with conn.begin():
            yield conn


def _changes_in_other_process(
    database_url: str, folder: str, day: date, position: int, today: date
) -> dict[str, Any] | None:
    """The change file, written by a worker process from its own snapshot; None (nothing
    written) when that snapshot is not at `position`, the exporting snapshot's log position.
    Every change to a listing appends an event, so the same log head means the same list."""
    engine = create_sync_engine(database_url, writer=False)
    try:
        with _reading(engine) as conn:
            if head(conn)[0] != position:
                return None
            output = _Output(Path(folder), CHANGES_JSONL)
            try:
                _write_changes(conn, output, day, position, today)
            finally:
                written = output.close()
            return written
    finally:
        engine.dispose()


def _helper_changes(
    helper: Future[dict[str, Any] | None], pool: ProcessPoolExecutor, seconds: float
) -> dict[str, Any] | None:
    """The change file the other process wrote, or None (write it here) if it failed or did
    not finish within `seconds`; then it is killed and gone before this returns, so that
    nothing of it writes to the file any more."""
    try:
        return helper.result(timeout=seconds)
    except TimeoutError:
        logger.error("export: the change file's process did not finish in %.0f s: written here", seconds)
    except Exception as exc:
        logger.error("export: the change file's process failed (%s): written here", type(exc).__name__)
    kill_workers(pool)
    shutdown_within(pool, seconds)
    return None


def _snapshot(
    conn: Connection,
    folder: Path,
    day: date,
    today: date,
    database_url: str,
    parallel_changes: int,
    helper_grace_seconds: float,
) -> tuple[int, list[dict[str, Any]]]:
    position, _ = head(conn)
    encoder = msgspec.json.Encoder()
    with ExitStack() as stack:
        helper: Future[dict[str, Any] | None] | None = None
        pool: ProcessPoolExecutor | None = None
        if _count_changes(conn, day, position) >= parallel_changes:
            # A day on which much of the list changed (the first export of a loaded registry):
            # its change file is written by a second process while this one writes the list.
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
            stack.callback(shutdown_within, pool, helper_grace_seconds)
            helper = pool.submit(_changes_in_other_process, database_url, str(folder), day, position, today)
        outputs = [_Output(folder, name) for name in (LISTINGS_JSONL, LISTINGS_CSV)]
        jsonl, csv_out = outputs
        try:
            # A byte-order mark first, as on the statistics CSVs: spreadsheets on
            # Chinese Windows read UTF-8 without one as the local code page.
            csv_out.write(b"\xef\xbb\xbf" + _csv_bytes([list(CSV_COLUMNS)]), 0)
            result = conn.execute(
                public_columns()
                .where(Listing.status == "active")
                .order_by(Listing.id)
                .execution_options(yield_per=STREAM_ROWS)
            )
            for chunk in result.partitions():
                entries = [public_entry(row, today) for row in plain_rows(chunk)]
                jsonl.write(b"".join(encoder.encode(entry) + b"\n" for entry in entries), len(entries))
                csv_out.write(_csv_bytes(_csv_row(entry) for entry in entries), len(entries))
                progress.advance(len(entries))
        finally:
            files = [output.close() for output in outputs]
        changes = None
        if helper is not None and pool is not None:
            changes = _helper_changes(helper, pool, helper_grace_seconds)
        if changes is None:
            # Small, or the other process's snapshot moved on (or it failed): written here,
            # from this snapshot.
            output = _Output(folder, CHANGES_JSONL)
            try:
                _write_changes(conn, output, day, position, today)
            finally:
                changes = output.close()
    return position, [*files, changes]


def run_export(
    engine: Engine,
    signer: RegistrySigner,
    export_dir: Path,
    day: date,
    now: datetime,
    *,
    parallel_changes: int = 50_000,
    helper_grace_seconds: float = HELPER_GRACE_SECONDS,
) -> dict[str, Any]:
    """Write the export of `day` (China date) into export_dir/DAY/; returns the manifest.
    From `parallel_changes` changes in the day, the change file is written by a second
    process while this one writes the list (here instead if that one has not finished
    `helper_grace_seconds` after the list)."""
    export_dir.mkdir(parents=True, exist_ok=True)
    folder = export_dir / f".{day.isoformat()}.{os.getpid()}.tmp"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    today = china_date(now)
    try:
        with _reading(engine) as conn:
            url = engine.url.render_as_string(hide_password=False)
            position, files = _snapshot(conn, folder, day, today, url, parallel_changes, helper_grace_seconds)
        manifest = {
            "format": "defaulter-registry-export/1",
            "date": day.isoformat(),
            "generated_at": iso(now),
            "log_position": position,
            "listings": files[0]["rows"],
            "files": files,
            "key_id": signer.key_id,
            "signature_file": SIGNATURE,
            "signature_algorithm": "Ed25519 over signature_context, then the exact bytes of manifest.json",
            # Domain separation (registry/identity/registry_key.py): a manifest signature can
            # never verify as a checkpoint, a receipt or a push. Manifests written before
            # 2026-12-06 have no signature_context and were signed over manifest.json alone.
            "signature_context": RAW_CONTEXTS[Domain.EXPORT_MANIFEST].decode(),
        }
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        (folder / MANIFEST).write_bytes(manifest_bytes)
        (folder / SIGNATURE).write_bytes(signer.sign(Domain.EXPORT_MANIFEST, manifest_bytes))
        _swap_in(folder, export_dir / day.isoformat())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return manifest


def _swap_in(folder: Path, final: Path) -> None:
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    folder.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def withdrawn(folder: Path) -> bool:
    """Whether an export's data files were withdrawn (its signed manifest stays, for audit)."""
    return (folder / WITHDRAWN).is_file()


def _changed_since(conn: Connection, position: int) -> bool:
    """Whether a listing the export at `position` holds (published by then) was amended,
    removed or expired after it. A listing published after it is not in it: its changes
    leave the export as it was."""
    published = aliased(Event)
    found = conn.execute(
        select(Event.seq)
        .join(published, published.listing_id == Event.listing_id)
        .where(
            Event.seq > position,
            Event.type.in_(sorted(CHANGING_EVENTS)),
            published.type == EventType.LISTING_PUBLISHED,
            published.seq <= position,
        )
        .limit(1)
    ).first()
    return found is not None


def withdraw_stale(engine: Engine, export_dir: Path, now: datetime) -> list[date]:
    """Withdraw the data files of every export holding a listing amended, removed or expired since.

    SPC Art. 10: a deleted entry is no longer published; Art. 9: a corrected entry is
    published as corrected. An export whose listing changed after its log position serves
    what the registry no longer publishes (the removed person, the name a court corrected),
    so its list and change files stop being served; its manifest and signature stay, for
    audit. Run after each export: well within the three working days the law allows.
    Returns the days withdrawn now."""
    done = []
    with engine.connect() as conn:
        for day in export_days(export_dir):
            folder = export_dir / day.isoformat()
            if withdrawn(folder):
                continue
            position = json.loads((folder / MANIFEST).read_bytes())["log_position"]
            if _changed_since(conn, position):
                record = {
                    "withdrawn_at": iso(now),
                    "reason": "a listing it holds has since been amended, removed or expired",
                }
                (folder / WITHDRAWN).write_text(json.dumps(record) + "\n")
                for name in DATA_FILES:
                    (folder / name).unlink(missing_ok=True)
                done.append(day)
    return done


def exported_after(export_dir: Path, day: date, moment: datetime) -> bool:
    """Whether `day`'s signed export exists and was generated at or after `moment`."""
    folder = export_dir / day.isoformat()
    if not (folder / SIGNATURE).is_file():
        return False
    generated = json.loads((folder / MANIFEST).read_bytes())["generated_at"]
    return datetime.fromisoformat(generated.replace("Z", "+00:00")) >= moment


def export_days(export_dir: Path) -> list[date]:
    """Complete exports (those with a signed manifest), newest first."""
    days = []
    if export_dir.is_dir():
        for child in export_dir.iterdir():
            try:
                day = date.fromisoformat(child.name)
            except ValueError:
                continue
            if (child / SIGNATURE).is_file():
                days.append(day)
    return sorted(days, reverse=True)


def prune(export_dir: Path, retention_days: int, today: date) -> list[date]:
    """Delete exports older than the retention; returns the days removed."""
    cutoff = today - timedelta(days=retention_days)
    removed = [day for day in export_days(export_dir) if day < cutoff]
    for day in removed:
        shutil.rmtree(export_dir / day.isoformat())
    return removed
