"""Path parameters that name a stored thing (a listing, a subscription, a notice, a client).

PostgreSQL text cannot hold U+0000, so an id holding it could only fail inside a query:
it is refused with 400 `invalid_parameter` before one runs, and the document says so.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

Id = Annotated[str, PathParameter(pattern=r"^[^\x00]+$", description="An id, as the API gave it")]
