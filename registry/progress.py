"""A progress bar with an estimate of the time left, for the long commands (reindex,
reconcile, export, a checkpoint's backlog), drawn by rich on stderr as `registry import`'s.

The work reports progress with `advance(n)` wherever it is (a search engine's rebuild, the
export writer), and opens a bar of its own (`task`) for a step only it knows it will take:
no-ops unless a command draws bars around it (`shown()`), so the scheduler's jobs running
the same code draw nothing. The bar follows the work into the threads the command
starts through `asyncio.to_thread` (which copies the context).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from registry.logs import logging_json


@dataclass(frozen=True)
class _Bar:
    progress: Progress
    task: TaskID


_display: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("progress_display", default=None)
_bar: contextvars.ContextVar[_Bar | None] = contextvars.ContextVar("progress", default=None)


def shown() -> bool:
    """Whether a command draws bars around this work (worth measuring progress for)."""
    return _display.get() is not None


def advance(done: int) -> None:
    """`done` more units of the current bar's work (nothing without a bar)."""
    bar = _bar.get()
    if bar is not None:
        bar.progress.advance(bar.task, done)


@contextmanager
def display() -> Iterator[None]:
    """Bars drawn on stderr, with the time left, for the tasks opened inside the block. None
    when stderr is not a terminal and carries JSON log lines (a bar there is not JSON)."""
    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=logging_json() and not console.is_terminal,
    ) as progress:
        token = _display.set(progress)
        try:
            yield
        finally:
            _display.reset(token)


@contextmanager
def task(description: str, total: int | None) -> Iterator[None]:
    """A bar of its own for `total` units (None: unknown, no estimate) of the work in the
    block, under the command's display: for a step only the work knows it will take (the
    newest documents' indexes at the end of a reindex). Nothing without a display."""
    progress = _display.get()
    if progress is None:
        yield
        return
    token = _bar.set(_Bar(progress, progress.add_task(description, total=total)))
    try:
        yield
    finally:
        _bar.reset(token)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[None]:
    """A command's one bar for `total` units around the work in the block."""
    with display(), task(description, total):
        yield
