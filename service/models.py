"""Every table, for Alembic's autogenerate and the tests: each plugin's package imports its
own models, so importing the plugins registers them all on `Base.metadata`."""

from registry.db import Base
from service.plugins import PLUGINS

__all__ = ["PLUGINS", "Base"]
