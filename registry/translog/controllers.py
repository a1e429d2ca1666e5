"""Public HTTP for the transparency log: checkpoints, proofs, a listing's leaves."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import Parameter

from registry.db import Database
from registry.http.dependencies import Injected
from registry.http.openapi import PARAMETER, PUBLIC, QUERY, problems
from registry.http.params import Id
from registry.problems import Problem
from registry.runtime import Services
from registry.translog.schemas import (
    CheckpointList,
    CheckpointRead,
    ConsistencyProof,
    InclusionProof,
    ListingLog,
)
from registry.translog.services import (
    checkpoint_json,
    checkpoint_of_size,
    consistency,
    inclusion,
    latest_checkpoint,
    list_checkpoints,
    listing_entries,
)

MAX_SIZE = 2**62
MAX_PAGE = 1000


class LogController(Controller):
    path = "/v1/log"
    tags = ("transparency log",)

    @get("/checkpoint", responses=problems(PUBLIC, QUERY, {404: "checkpoint_not_found"}))
    async def checkpoint(
        self,
        services: Injected[Services],
        size: Annotated[
            int | None, Parameter(ge=1, le=MAX_SIZE, description="A checkpointed tree size")
        ] = None,
    ) -> CheckpointRead:
        """The latest signed checkpoint, or the one of tree size `size`."""
        if size is not None:
            row = await services.db.read(checkpoint_of_size, size)
        else:
            latest = await services.db.read(latest_checkpoint)
            if latest is None:
                raise Problem(404, "checkpoint_not_found", "the log has no signed checkpoint yet")
            row = latest
        return msgspec.convert(checkpoint_json(row, services.signer), CheckpointRead)

    @get("/checkpoints", responses=problems(PUBLIC, QUERY))
    async def checkpoints(
        self,
        services: Injected[Services],
        after_size: Annotated[int, Parameter(ge=0, le=MAX_SIZE)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 100,
    ) -> CheckpointList:
        """Signed checkpoints in order of tree size, after `after_size`."""
        rows = await services.db.read(list_checkpoints, after_size, limit)
        return msgspec.convert(
            {"checkpoints": [checkpoint_json(row, services.signer) for row in rows]}, CheckpointList
        )

    @get(
        "/proof/inclusion",
        responses=problems(
            PUBLIC,
            QUERY,
            {404: ("leaf_not_found", "checkpoint_not_found"), 422: "leaf_not_in_tree"},
        ),
    )
    async def inclusion_proof(
        self,
        services: Injected[Services],
        seq: Annotated[int | None, Parameter(ge=1, le=MAX_SIZE, description="An event's seq")] = None,
        leaf_index: Annotated[int | None, Parameter(ge=0, le=MAX_SIZE)] = None,
        tree_size: Annotated[
            int | None,
            Parameter(ge=1, le=MAX_SIZE, description="A checkpointed size; default: the first covering"),
        ] = None,
    ) -> InclusionProof:
        """The RFC 6962 audit path of one leaf (by event seq or leaf index) to a signed root."""
        if (seq is None) == (leaf_index is None):
            raise Problem(400, "invalid_parameter", "give exactly one of seq or leaf_index")
        proof = await services.db.read(
            inclusion, services.signer, seq=seq, leaf_index=leaf_index, size=tree_size
        )
        return msgspec.convert(proof, InclusionProof)

    @get(
        "/proof/consistency",
        responses=problems(PUBLIC, QUERY, {400: "invalid_range", 404: "checkpoint_not_found"}),
    )
    async def consistency_proof(
        self,
        db: Injected[Database],
        first: Annotated[int, Parameter(ge=1, le=MAX_SIZE)],
        second: Annotated[int, Parameter(ge=1, le=MAX_SIZE)],
    ) -> ConsistencyProof:
        """The RFC 6962 consistency proof between two checkpointed tree sizes."""
        return msgspec.convert(await db.read(consistency, first, second), ConsistencyProof)

    @get("/entries/{listing_id:str}", responses=problems(PUBLIC, PARAMETER, {404: "listing_not_logged"}))
    async def entries(self, db: Injected[Database], listing_id: Id) -> ListingLog:
        """The leaves of one listing's events and the checkpoint each first appears in."""
        entries = await db.read(listing_entries, listing_id)
        if not entries:
            raise Problem(404, "listing_not_logged", "no logged event for this listing")
        return msgspec.convert({"listing_id": listing_id, "entries": entries}, ListingLog)
