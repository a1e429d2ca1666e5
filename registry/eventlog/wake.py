"""Waking the log's followers when a commit appends events, instead of waiting for their
next interval.

A removal must leave every public surface within seconds; followers that poll the log every
0.5-1 s add up to their interval to every surface (the indexer, the feeds' reader, the push
worker), and more while a batch keeps them busy. So every commit of a transaction that
appended events (`registry.eventlog.services.append_events` marks the connection) calls the
listeners registered here, in the process that committed; the scheduler
(`service.scheduler`) runs the jobs that ask for it (`Job.wake_on_log`) at once, or once more
right after the run in progress. Intervals stay the fallback: for events committed by
another process (a separate `registry worker`), a follower still runs within its interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, event

logger = logging.getLogger("registry.eventlog.wake")

_MARK = "registry.log_appended"
_listeners: list[Callable[[], bool]] = []


def mark_appended(conn: Connection) -> None:
    """Called by `append_events` in the caller's transaction."""
    conn.info[_MARK] = True


def on_log_appended(listener: Callable[[], bool]) -> None:
    """`listener()` after every commit that appended events in this process; it returns
    False once it no longer wants to be called (its scheduler stopped)."""
    _listeners.append(listener)


def _committed(conn: Connection) -> None:
    if not conn.info.pop(_MARK, False):
        return
    for listener in list(_listeners):
        try:
            keep = listener()
        except Exception:  # a waker must never fail the commit that woke it
            logger.exception("a log follower's waker failed")
            keep = True
        if not keep:
            _listeners.remove(listener)


def _rolled_back(conn: Connection) -> None:
    conn.info.pop(_MARK, None)


event.listen(Engine, "commit", _committed)
event.listen(Engine, "rollback", _rolled_back)
