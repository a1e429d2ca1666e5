"""Public HTTP for the transparency log: checkpoints, proofs, a listing's leaves."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, Parameter

from registry.problems import Problem
from registry.runtime import services_of
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
        request: Request[Any, Any, Any],
        size: Annotated[
            int | None, Parameter(ge=1, le=MAX_SIZE, description="A checkpointed tree size")
        ] = None,
    ) -> dict[str, Any]:
        """The latest signed checkpoint, or the one of tree size `size`."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            if size is not None:
                row = await conn.run_sync(checkpoint_of_size, size)
            else:
                latest = await conn.run_sync(latest_checkpoint)
                if latest is None:
                    raise Problem(404, "checkpoint_not_found", "the log has no signed checkpoint yet")
                row = latest
        return checkpoint_json(row, services.signer)

    @get("/checkpoints")
    async def checkpoints(
        self,
        request: Request[Any, Any, Any],
        after_size: Annotated[int, Parameter(ge=0, le=MAX_SIZE)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 100,
    ) -> dict[str, Any]:
        """Signed checkpoints in order of tree size, after `after_size`."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            rows = await conn.run_sync(list_checkpoints, after_size, limit)
        return {"checkpoints": [checkpoint_json(row, services.signer) for row in rows]}

    @get("/proof/inclusion")
    async def inclusion_proof(
        self,
        request: Request[Any, Any, Any],
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
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(
                lambda c: inclusion(c, services.signer, seq=seq, leaf_index=leaf_index, size=tree_size)
            )

    @get("/proof/consistency")
    async def consistency_proof(
        self,
        request: Request[Any, Any, Any],
        first: Annotated[int, Parameter(ge=1, le=MAX_SIZE)],
        second: Annotated[int, Parameter(ge=1, le=MAX_SIZE)],
    ) -> dict[str, Any]:
        """The RFC 6962 consistency proof between two checkpointed tree sizes."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(consistency, first, second)

    @get("/entries/{listing_id:str}")
    async def entries(self, request: Request[Any, Any, Any], listing_id: FromPath[str]) -> dict[str, Any]:
        """The leaves of one listing's events and the checkpoint each first appears in."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            entries = await conn.run_sync(listing_entries, listing_id)
        if not entries:
            raise Problem(404, "listing_not_logged", "no logged event for this listing")
        return {"listing_id": listing_id, "entries": entries}
