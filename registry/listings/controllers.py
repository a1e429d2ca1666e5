"""HTTP for courts (and admins): thin handlers over the ingest service."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import Body, FromPath

from registry.clients.services import Principal
from registry.db import Database
from registry.http.auth import roles
from registry.http.body import SignedBody, decode_body
from registry.http.dependencies import Injected
from registry.identity.crypto import Secrets
from registry.listings.examples import BATCH_EXAMPLE, LISTING_EXAMPLE, REMOVAL_EXAMPLE
from registry.listings.schemas import (
    EvidenceRead,
    IngestResult,
    ListingBatch,
    ListingEnvelope,
    ListingRead,
    RemovalEnvelope,
)
from registry.listings.services import read_evidence, read_listing
from registry.problems import PROBLEM_MEDIA_TYPE, Problem
from registry.runtime import Services

MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer

# The exact bytes a court sent (its signature is checked over them), documented as the
# envelope they must hold.
SignedListing = Annotated[bytes, Body(title="ListingEnvelope", examples=[LISTING_EXAMPLE])]
SignedRemoval = Annotated[bytes, Body(title="RemovalEnvelope", examples=[REMOVAL_EXAMPLE])]
SignedBatch = Annotated[bytes, Body(title="ListingBatch", examples=[BATCH_EXAMPLE])]


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    # Raw: each envelope stays undecoded bytes until the worker that prepares it.
    envelopes: list[msgspec.Raw]


def _respond(result: IngestResult) -> Response[Any]:
    if result.problem is not None:
        return Response(result.problem, status_code=result.status, media_type=PROBLEM_MEDIA_TYPE)
    return Response(result, status_code=result.status)


class ListingController(Controller):
    path = "/v1/listings"
    tags = ("listings",)

    @post("/", guards=[roles("court", "admin")], status_code=201, dto=SignedBody[ListingEnvelope])
    async def create(
        self, data: SignedListing, services: Injected[Services], principal: Injected[Principal]
    ) -> Response[Any]:
        """Publish one signed listing: {"listing": {...}, "signature": {"key_id", "value"}}.

        201 when new; 200 with the same id for an identical resubmission; 409 for a conflicting one.
        """
        [result] = await services.ingest.publish([data], principal)
        return _respond(result)

    @post("/batch", guards=[roles("court", "admin")], status_code=200, dto=SignedBody[ListingBatch])
    async def batch(
        self, data: SignedBatch, services: Injected[Services], principal: Injected[Principal]
    ) -> dict[str, Any]:
        """Publish many signed listings; one result per envelope, in order."""
        envelopes = decode_body(data, _Batch).envelopes
        limit = services.settings.listings.batch_max_items
        if len(envelopes) > limit:
            raise Problem(
                413, "batch_too_large", f"a batch holds at most {limit} envelopes", extra={"limit": limit}
            )
        results = await services.ingest.publish([bytes(raw) for raw in envelopes], principal)
        summary = {"created": 0, "unchanged": 0, "rejected": 0}
        for result in results:
            summary[result.outcome] += 1
        return {"summary": summary, "results": [msgspec.to_builtins(r) for r in results]}

    @get("/{listing_id:str}", guards=[roles("court", "admin")])
    async def read(
        self,
        listing_id: FromPath[str],
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> ListingRead:
        """The listing with its full identifier, version history and removal (listing court or admin)."""
        return await db.read(read_listing, listing_id, secrets.keyring, principal.bound_court)

    @get("/{listing_id:str}/versions/{version:int}", guards=[roles("court", "admin")])
    async def evidence(
        self,
        listing_id: FromPath[str],
        version: FromPath[int],
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> EvidenceRead:
        """The exact bytes the court signed for this version, and its signature."""
        if not 1 <= version <= MAX_VERSION:
            raise Problem(404, "version_not_found", "no such listing version")
        return await db.read(read_evidence, listing_id, version, secrets.keyring, principal.bound_court)

    @post(
        "/{listing_id:str}/amendments",
        guards=[roles("court", "admin")],
        status_code=200,
        dto=SignedBody[ListingEnvelope],
    )
    async def amend(
        self,
        data: SignedListing,
        listing_id: FromPath[str],
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> Response[Any]:
        """A signed new version of the whole listing. Court, case and debtor identity cannot change."""
        return _respond(await services.ingest.amend(listing_id, data, principal))

    @post(
        "/{listing_id:str}/removal",
        guards=[roles("court", "admin")],
        status_code=200,
        dto=SignedBody[RemovalEnvelope],
    )
    async def remove(
        self,
        data: SignedRemoval,
        listing_id: FromPath[str],
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> Response[Any]:
        """Remove a listing from every public surface (signed by the listing court)."""
        return _respond(await services.ingest.remove(listing_id, data, principal))
