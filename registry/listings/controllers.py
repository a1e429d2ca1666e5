"""HTTP for courts (and admins): thin handlers over the ingest service."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from registry.clients.services import Principal
from registry.db import Database
from registry.http.auth import roles
from registry.http.dependencies import Injected
from registry.identity.crypto import Secrets
from registry.listings.schemas import EvidenceRead, IngestResult, ListingRead
from registry.listings.services import read_evidence, read_listing
from registry.problems import PROBLEM_MEDIA_TYPE, Problem
from registry.runtime import Services

MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer


class _Batch(msgspec.Struct):
    # Raw: each envelope stays undecoded bytes until the worker that prepares it.
    envelopes: list[msgspec.Raw]


def _batch_envelopes(body: bytes) -> list[msgspec.Raw]:
    try:
        return msgspec.json.decode(body, type=_Batch).envelopes
    except msgspec.ValidationError as exc:  # valid JSON of the wrong shape
        raise Problem(422, "invalid_envelope", 'expected {"envelopes": [...]}') from exc
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Problem(400, "invalid_json", "the body is not valid JSON (or is nested too deep)") from exc


def _respond(result: IngestResult) -> Response[Any]:
    if result.problem is not None:
        return Response(result.problem, status_code=result.status, media_type=PROBLEM_MEDIA_TYPE)
    return Response(result, status_code=result.status)


class ListingController(Controller):
    path = "/v1/listings"
    tags = ("listings",)

    @post("/", guards=[roles("court", "admin")], status_code=201)
    async def create(
        self, request: Request[Any, Any, Any], services: Injected[Services], principal: Injected[Principal]
    ) -> Response[Any]:
        """Publish one signed listing: {"listing": {...}, "signature": {"key_id", "value"}}.

        201 when new; 200 with the same id for an identical resubmission; 409 for a conflicting one.
        """
        [result] = await services.ingest.publish([await request.body()], principal)
        return _respond(result)

    @post("/batch", guards=[roles("court", "admin")], status_code=200)
    async def batch(
        self, request: Request[Any, Any, Any], services: Injected[Services], principal: Injected[Principal]
    ) -> dict[str, Any]:
        """Publish many signed listings; one result per envelope, in order."""
        envelopes = _batch_envelopes(await request.body())
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

    @post("/{listing_id:str}/amendments", guards=[roles("court", "admin")], status_code=200)
    async def amend(
        self,
        request: Request[Any, Any, Any],
        listing_id: FromPath[str],
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> Response[Any]:
        """A signed new version of the whole listing. Court, case and debtor identity cannot change."""
        return _respond(await services.ingest.amend(listing_id, await request.body(), principal))

    @post("/{listing_id:str}/removal", guards=[roles("court", "admin")], status_code=200)
    async def remove(
        self,
        request: Request[Any, Any, Any],
        listing_id: FromPath[str],
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> Response[Any]:
        """Remove a listing from every public surface (signed by the listing court)."""
        return _respond(await services.ingest.remove(listing_id, await request.body(), principal))
