"""HTTP for courts (and admins): thin handlers over the ingest service."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, Parameter

from registry.clients.services import Principal
from registry.db import Database
from registry.http.auth import roles
from registry.http.body import DOCUMENT_BODY_BYTES, SignedBody
from registry.http.dependencies import Injected
from registry.http.openapi import BEARER_KEY, BODY, GUARDED, PARAMETER, QUERY, Codes, problems
from registry.http.params import Id, PathNumber, court_parameter, path_number
from registry.identity.crypto import Secrets
from registry.listings.batch import envelopes_of
from registry.listings.examples import BATCH_EXAMPLE, LISTING_EXAMPLE, REMOVAL_EXAMPLE
from registry.listings.schemas import (
    BatchAnswer,
    BatchSummary,
    EvidenceRead,
    IngestResult,
    LateRemovalPage,
    ListingBatch,
    ListingEnvelope,
    ListingRead,
    RemovalEnvelope,
)
from registry.listings.services import late_removals, read_evidence, read_listing
from registry.problems import Problem
from registry.runtime import Services
from registry.text import IDENTIFIER_PATTERN

# The exact bytes a court sent (its signature is checked over them), documented as the
# envelope they must hold.
SignedListing = Annotated[bytes, Body(title="ListingEnvelope", examples=[LISTING_EXAMPLE])]
SignedRemoval = Annotated[bytes, Body(title="RemovalEnvelope", examples=[REMOVAL_EXAMPLE])]
SignedBatch = Annotated[bytes, Body(title="ListingBatch", examples=[BATCH_EXAMPLE])]


def _respond(result: IngestResult) -> Response[IngestResult]:
    if result.problem is not None:
        raise Problem.from_dict(result.problem)
    return Response(result, status_code=result.status)


# What preparing a signed envelope can refuse (registry/listings/prepare.py), beside the body policy.
ENVELOPE: Codes = {
    422: (
        "invalid_date",
        "duplicate_member",
        "unknown_court",
        "invalid_court_code",
        "invalid_case_number",
        "case_number_court_mismatch",
        "case_number_year_mismatch",
        "invalid_id_number",
        "invalid_credit_code",
        "unknown_id_type",
        "invalid_nationality",
        "invalid_organization_code",
        "invalid_registration_country",
        "invalid_registration_number",
        "organization_identifier",
        "debtor_minor",
        "date_out_of_range",
        "unknown_ground",
        "term_invalid",
        "extension_required",
        "term_already_ended",
        "case_not_enforcement",
        "creditor_required",
        "performance_inconsistent",
        "unknown_special_subject",
        "special_subject_mismatch",
        "unknown_key",
        "key_revoked",
        "key_expired",
        "key_court_mismatch",
        "signature_invalid",
    )
}
READ: Codes = {403: "not_your_listing", 404: "listing_not_found"}
CHANGE: Codes = {**READ, 409: "listing_not_active"}
UNCHANGED = {
    200: ResponseSpec(
        IngestResult, description="An identical resubmission: the listing as it is.", generate_examples=False
    )
}


class ListingController(Controller):
    path = "/v1/listings"
    tags = ("listings",)
    guards = [roles("court", "admin")]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER_KEY

    @post(
        "/",
        status_code=201,
        request_max_body_size=DOCUMENT_BODY_BYTES,
        dto=SignedBody[ListingEnvelope],
        responses=UNCHANGED
        | problems(
            GUARDED,
            BODY,
            ENVELOPE,
            {403: "court_mismatch", 409: ("submission_conflict", "already_listed", "relisting_barred")},
        ),
    )
    async def create(
        self, data: SignedListing, services: Injected[Services], principal: Injected[Principal]
    ) -> Response[IngestResult]:
        """Publish one signed listing: {"listing": {...}, "signature": {"key_id", "value"}}.

        201 when new; 200 with the same id for an identical resubmission; 409 for a conflicting one.
        """
        [result] = await services.ingest.publish([data], principal)
        return _respond(result)

    @post(
        "/batch",
        status_code=200,
        dto=SignedBody[ListingBatch],
        responses=problems(GUARDED, BODY, {413: "batch_too_large"}),
    )
    async def batch(
        self, data: SignedBatch, services: Injected[Services], principal: Injected[Principal]
    ) -> BatchAnswer:
        """Publish many signed listings; one result per envelope, in order. A refused envelope is
        a result with its `problem` (the codes of `POST /v1/listings`); the rest are stored."""
        envelopes = envelopes_of(data)
        limit = services.settings.listings.batch_max_items
        if len(envelopes) > limit:
            raise Problem(
                413, "batch_too_large", f"a batch holds at most {limit} envelopes", extra={"limit": limit}
            )
        results = await services.ingest.publish(envelopes, principal)
        summary = {"created": 0, "unchanged": 0, "rejected": 0}
        for result in results:
            summary[result.outcome] += 1
        return BatchAnswer(summary=BatchSummary(**summary), results=results)

    @get("/{listing_id:str}", responses=problems(GUARDED, PARAMETER, READ))
    async def read(
        self,
        listing_id: Id,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> ListingRead:
        """The listing with its full identifier, version history and removal (listing court or admin)."""
        return await db.read(read_listing, listing_id, secrets.keyring, principal.bound_court)

    @get(
        "/{listing_id:str}/versions/{version:str}",
        responses=problems(GUARDED, PARAMETER, READ, {404: "version_not_found"}),
    )
    async def evidence(
        self,
        listing_id: Id,
        version: PathNumber,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> EvidenceRead:
        """The exact bytes the court signed for this version, and its signature."""
        number = path_number(version, Problem(404, "version_not_found", "no such listing version"))
        return await db.read(read_evidence, listing_id, number, secrets.keyring, principal.bound_court)

    @post(
        "/{listing_id:str}/amendments",
        status_code=200,
        request_max_body_size=DOCUMENT_BODY_BYTES,
        dto=SignedBody[ListingEnvelope],
        responses=problems(
            GUARDED,
            BODY,
            PARAMETER,
            ENVELOPE,
            CHANGE,
            {
                409: ("submission_conflict", "relisting_barred"),
                422: ("immutable_field", "extension_required", "term_change_needs_relisting"),
            },
        ),
    )
    async def amend(
        self,
        data: SignedListing,
        listing_id: Id,
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> Response[IngestResult]:
        """A signed new version of the whole listing. Court, case and debtor identity cannot change."""
        return _respond(await services.ingest.amend(listing_id, data, principal))

    @post(
        "/{listing_id:str}/removal",
        status_code=200,
        request_max_body_size=DOCUMENT_BODY_BYTES,
        dto=SignedBody[RemovalEnvelope],
        responses=problems(
            GUARDED,
            BODY,
            PARAMETER,
            CHANGE,
            {
                422: (
                    "duplicate_member",
                    "unknown_reason",
                    "date_out_of_range",
                    "listing_id_mismatch",
                    "unknown_key",
                    "key_revoked",
                    "key_expired",
                    "key_court_mismatch",
                    "signature_invalid",
                )
            },
        ),
    )
    async def remove(
        self,
        data: SignedRemoval,
        listing_id: Id,
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> Response[IngestResult]:
        """Remove a listing from every public surface (signed by the listing court)."""
        return _respond(await services.ingest.remove(listing_id, data, principal))


class RemovalReportController(Controller):
    path = "/v1/removals"
    tags = ("listings",)
    guards = [roles("court", "admin")]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER_KEY

    @get("/late", responses=problems(GUARDED, QUERY, {400: "unknown_court"}))
    async def late(
        self,
        db: Injected[Database],
        principal: Injected[Principal],
        court: Annotated[
            str | None,
            Parameter(
                max_length=16,
                pattern=IDENTIFIER_PATTERN,
                description="Admins: one court's only (a court sees its own)",
            ),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
    ) -> LateRemovalPage:
        """Removals recorded after their deadline of three working days (SPC Art. 9-10), newest
        first: a court's own, or every court's for an admin."""
        # Then looked up: a court no one has is 400 `unknown_court`, not an empty page.
        court = court_parameter(court)
        scope = principal.bound_court if principal.bound_court is not None else court
        return await db.read(late_removals, scope, limit, offset)
