"""The transparency log: public proofs, the checkpoint job, `registry log ...`."""

from __future__ import annotations

from collections.abc import Sequence

from registry.settings import Settings
from registry.translog.cli import log_group
from registry.translog.controllers import LogController
from registry.translog.jobs import advance_log
from registry.translog.services import JOB
from registry.wiring import Job, Plugin


def _jobs(settings: Settings) -> Sequence[Job]:
    # First run soon after start, so a fresh service has a checkpoint to show within seconds.
    return [Job(JOB, advance_log, every=settings.translog.interval_seconds, first_after=5)]


plugin = Plugin(name="translog", public_routes=[LogController], jobs=_jobs, cli=[log_group])
