"""Correction and review (SPC Provisions Art. 9, 11, 12): the applicant's public routes, the
deciding courts' routes, the per-address budget, and the reader that notes corrections
carried out by a later amendment or removal."""

from __future__ import annotations

from collections.abc import Sequence

from registry.corrections.budget import budget_resource
from registry.corrections.certificates import signer_resource
from registry.corrections.cli import corrections
from registry.corrections.controllers import (
    CorrectionController,
    PublicCertificateController,
    PublicCorrectionController,
    correction_metrics,
)
from registry.corrections.services import READER
from registry.settings import Settings
from registry.wiring import Job, Plugin, follow_job


def _jobs(settings: Settings) -> Sequence[Job]:
    return [follow_job("corrections_carry_out", READER, every=settings.corrections.follow_interval_seconds)]


plugin = Plugin(
    name="corrections",
    routes=[CorrectionController, correction_metrics],
    public_routes=[PublicCorrectionController, PublicCertificateController],
    jobs=_jobs,
    cli=[corrections],
    resources=[budget_resource, signer_resource],
)
