"""Public HTTP for the transparency log: checkpoints, proofs, a listing's leaves."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import FromPath, Parameter

from registry.db import Database
from registry.http.dependencies import Injected
from registry.problems import Problem
from registry.runtime import Services
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

    @get("/checkpoint")
    async def checkpoint(
        self,
        services: Injected[Services],
        size: Annotated[
            int | None, Parameter(ge=1, le=MAX_SIZE, description="A checkpointed tree size")
        ] = None,
    ) -> dict[str, Any]:
        """The latest signed checkpoint, or the one of tree size `size`."""
        if size is not None:
            row = await services.db.read(checkpoint_of_size, size)
        else:
            latest = await services.db.read(latest_checkpoint)
            if latest is None:
                raise Problem(404, "checkpoint_not_found", "the log has no signed checkpoint yet")
            row = latest
        return checkpoint_json(row, services.signer)

    @get("/checkpoints")
    async def checkpoints(
        self,
        services: Injected[Services],
        after_size: Annotated[int, Parameter(ge=0, le=MAX_SIZE)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 100,
    ) -> dict[str, Any]:
        """Signed checkpoints in order of tree size, after `after_size`."""
        rows = await services.db.read(list_checkpoints, after_size, limit)
        return {"checkpoints": [checkpoint_json(row, services.signer) for row in rows]}

    @get("/proof/inclusion")
    async def inclusion_proof(
        self,
        services: Injected[Services],
        seq: Annotated[int | None, Parameter(ge=1, le=MAX_SIZE, description="An event's seq")] = None,
        leaf_index: Annotated[int | None, Parameter(ge=0, le=MAX_SIZE)] = None,
        tree_size: Annotated[
            int | None,
            Parameter(ge=1, le=MAX_SIZE, description="A checkpointed size; default: the first covering"),
        ] = None,
    ) -> dict[str, Any]:
        """The RFC 6962 audit path of one leaf (by event seq or leaf index) to a signed root."""
        if (seq is None) == (leaf_index is None):
            raise Problem(400, "invalid_parameter", "give exactly one of seq or leaf_index")
        return await services.db.read(
            inclusion, services.signer, seq=seq, leaf_index=leaf_index, size=tree_size
        )

    @get("/proof/consistency")
    async def consistency_proof(
        self,
        db: Injected[Database],
        first: Annotated[int, Parameter(ge=1, le=MAX_SIZE)],
        second: Annotated[int, Parameter(ge=1, le=MAX_SIZE)],
    ) -> dict[str, Any]:
        """The RFC 6962 consistency proof between two checkpointed tree sizes."""
        return await db.read(consistency, first, second)

    @get("/entries/{listing_id:str}")
    async def entries(self, db: Injected[Database], listing_id: FromPath[str]) -> dict[str, Any]:
        """The leaves of one listing's events and the checkpoint each first appears in."""
        entries = await db.read(listing_entries, listing_id)
        if not entries:
            raise Problem(404, "listing_not_logged", "no logged event for this listing")
        return {"listing_id": listing_id, "entries": entries}
