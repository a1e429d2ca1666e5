"""A progress bar with an estimate of the time left, for the long commands (reindex,
reconcile, export, a checkpoint's backlog), drawn by rich on stderr as `registry import`'s.

The work reports progress with `advance(n)` wherever it is (a search engine's rebuild, the
export writer): a no-op unless a command opened a bar around it, so the scheduler's jobs
running the same code draw nothing. The bar follows the work into the threads the command
starts through `asyncio.to_thread` (which copies the context).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

_advance: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "progress", default=None
)


def advance(done: int) -> None:
    """`done` more units of the current bar's work (nothing without a bar)."""
    report = _advance.get()
    if report is not None:
        report(done)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[None]:
    """A bar for `total` units (None: unknown, no estimate) around the work in the block."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(description, total=total)
        token = _advance.set(lambda done: progress.advance(task, done))
        try:
            yield
        finally:
            _advance.reset(token)
