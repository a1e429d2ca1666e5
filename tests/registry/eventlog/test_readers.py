"""The log-reader primitive: cursors claimed and created, batches bounded by the log head,
a reader's writes and its cursor committed or rolled back together, and two processes
running one reader never processing the same events (both databases)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest
import sqlalchemy as sa

from registry.db import create_sync_engine
from registry.eventlog.readers import (
    LogEvent,
    LogReader,
    advance,
    claim_cursor,
    follow_sync,
    read_events,
    step,
)
from registry.eventlog.services import EventDraft, append_events
from registry.eventlog.types import EventType
from registry.settings import Settings
from registry.timeutil import utcnow

ALL_TYPES = frozenset(EventType)
COURT_EVENTS = frozenset({EventType.COURT_ADDED})


@pytest.fixture
def writer(settings: Settings, engine: sa.Engine) -> Iterator[sa.Engine]:
    """A writer engine as the service makes one (BEGIN IMMEDIATE on SQLite); `engine` is
    asked for so that the tables are emptied after the test."""
    made = create_sync_engine(settings.database.url)
    yield made
    made.dispose()


def append(writer: sa.Engine, *types: EventType) -> list[int]:
    with writer.begin() as conn:
        drafts = [EventDraft(kind, "test", court_code="京0105") for kind in types]
        return append_events(conn, drafts, utcnow())


def position(writer: sa.Engine, name: str) -> int | None:
    with writer.connect() as conn:
        found = conn.execute(sa.text("SELECT position FROM reader_cursors WHERE name = :n"), {"n": name})
        return found.scalar()


@dataclass
class Recorder:
    """A reader's work that notes what it saw and writes a row of its own (a second cursor)."""

    types: frozenset[EventType] = ALL_TYPES
    batch: int = 2
    fail: bool = False
    seen: list[int] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event | None = None

    def process(self, conn: sa.Connection, events: Sequence[LogEvent], now: datetime) -> None:
        self.entered.set()
        if self.release is not None:
            assert self.release.wait(30)
        claim_cursor(conn, "test.sink")
        advance(conn, "test.sink", events[-1].seq, now)
        self.seen.extend(event.seq for event in events)
        if self.fail:
            raise RuntimeError("the reader fails after writing")

    @property
    def reader(self) -> LogReader:
        return LogReader("test.reader", self.process, self.types, self.batch)


def test_a_cursor_is_created_at_zero_on_first_claim_and_moves_both_ways(writer: sa.Engine) -> None:
    assert position(writer, "test.new") is None
    with writer.begin() as conn:
        assert claim_cursor(conn, "test.new") == 0
        advance(conn, "test.new", 12)
    with writer.begin() as conn:
        assert claim_cursor(conn, "test.new") == 12
        advance(conn, "test.new", 3)  # a rebuild replays from an earlier position
    assert position(writer, "test.new") == 3


def test_events_are_typed_and_filtered_in_the_database(writer: sa.Engine) -> None:
    seqs = append(writer, EventType.COURT_ADDED, EventType.CLIENT_CREATED, EventType.COURT_ADDED)
    with writer.connect() as conn:
        every = read_events(conn, 0, 10)
        courts = read_events(conn, 0, 10, COURT_EVENTS)
        bounded = read_events(conn, 0, None, upto=seqs[1])
    assert [event.seq for event in every] == seqs
    assert every[0].type == EventType.COURT_ADDED and every[0].court_code == "京0105"
    assert len(every[0].hash) == 32 and every[0].occurred_at.tzinfo is not None
    assert [event.seq for event in courts] == [seqs[0], seqs[2]]
    assert [event.seq for event in bounded] == seqs[:2]


def test_a_reader_catches_up_in_batches_and_passes_over_other_types(writer: sa.Engine) -> None:
    seqs = append(writer, *[EventType.COURT_ADDED] * 3, EventType.CLIENT_CREATED, EventType.CLIENT_REVOKED)
    recorder = Recorder(types=COURT_EVENTS)
    assert follow_sync(writer, recorder.reader) == 5  # batches of two, the last one short
    assert recorder.seen == seqs[:3]
    assert position(writer, "test.reader") == seqs[-1]
    assert follow_sync(writer, recorder.reader) == 0
    assert recorder.seen == seqs[:3]


def test_a_batch_is_the_next_events_of_the_log_up_to_the_head(writer: sa.Engine) -> None:
    seqs = append(writer, EventType.CLIENT_CREATED, *[EventType.COURT_ADDED] * 3)
    recorder = Recorder(types=COURT_EVENTS, batch=2)
    with writer.begin() as conn:
        assert step(conn, recorder.reader, utcnow()) == 2
    assert recorder.seen == seqs[1:2] and position(writer, "test.reader") == seqs[1]
    with writer.begin() as conn:
        assert step(conn, recorder.reader, utcnow()) == 2
        assert step(conn, recorder.reader, utcnow()) == 0
    assert recorder.seen == seqs[1:] and position(writer, "test.reader") == seqs[-1]


def test_the_readers_writes_and_its_cursor_commit_or_roll_back_together(writer: sa.Engine) -> None:
    seqs = append(writer, EventType.COURT_ADDED, EventType.COURT_ADDED)
    with pytest.raises(RuntimeError), writer.begin() as conn:
        step(conn, Recorder(fail=True).reader, utcnow())
    assert position(writer, "test.reader") is None
    assert position(writer, "test.sink") is None
    with writer.begin() as conn:
        step(conn, Recorder().reader, utcnow())
    assert position(writer, "test.reader") == position(writer, "test.sink") == seqs[-1]


def test_two_processes_running_one_reader_never_process_the_same_events(writer: sa.Engine) -> None:
    seqs = append(writer, *[EventType.COURT_ADDED] * 5)
    first = Recorder(batch=3, release=threading.Event())
    second = Recorder(batch=3)

    def run(recorder: Recorder) -> None:
        with writer.begin() as conn:
            step(conn, recorder.reader, utcnow())

    one = threading.Thread(target=run, args=(first,))
    one.start()
    assert first.entered.wait(10)  # the first holds the cursor, mid-batch
    two = threading.Thread(target=run, args=(second,))
    two.start()
    time.sleep(0.5)
    assert not second.entered.is_set(), "the second reader must wait for the first's cursor"
    first.release.set()  # type: ignore[union-attr]
    one.join(10)
    two.join(10)
    assert first.seen == seqs[:3]
    assert second.seen == seqs[3:]
    assert position(writer, "test.reader") == seqs[-1]


def test_two_processes_creating_one_cursor_both_get_it(writer: sa.Engine) -> None:
    """The loser's insert waits for the winner's commit, then does nothing."""
    claimed: list[int] = []
    holding = threading.Event()
    done = threading.Event()

    def create_and_hold() -> None:
        with writer.begin() as conn:
            claimed.append(claim_cursor(conn, "test.created"))
            holding.set()
            assert done.wait(10)
            advance(conn, "test.created", 7)

    def create_too() -> None:
        with writer.begin() as conn:
            claimed.append(claim_cursor(conn, "test.created"))

    one = threading.Thread(target=create_and_hold)
    one.start()
    assert holding.wait(10)
    two = threading.Thread(target=create_too)
    two.start()
    time.sleep(0.5)
    assert claimed == [0]
    done.set()
    one.join(10)
    two.join(10)
    assert claimed == [0, 7]
