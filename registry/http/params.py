"""Path parameters that name a stored thing (a listing, a subscription, a notice, a client).

An id with a control character or a bidi override (`registry.text`; PostgreSQL text cannot
even hold U+0000) could only fail inside a query or mislead a reader: it is refused with 400
`invalid_parameter` before one runs, on both databases alike, and the document says so.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

from registry.text import IDENTIFIER_PATTERN

Id = Annotated[str, PathParameter(pattern=IDENTIFIER_PATTERN, description="An id, as the API gave it")]
