"""Why the registry cannot use its keys (raised at start, before anything is served)."""

from __future__ import annotations


class KeyConfigError(RuntimeError):
    """A key source exists but cannot be used (unreadable, malformed, incomplete)."""


class KeysUnavailable(RuntimeError):
    """The database needs keys this process does not hold. `missing` names their ids."""

    def __init__(self, missing: list[str], absent: list[str], detail: str = "") -> None:
        self.missing = missing
        self.absent = absent
        self.detail = detail
        parts = []
        if missing:
            parts.append("the database needs keys this registry does not hold: " + ", ".join(missing))
        if absent:
            kinds = " and no ".join(kind.replace("_", "-") + " key" for kind in absent)
            parts.append(f"no {kinds} configured")
        if detail:
            parts.append(detail)
        super().__init__(
            "; ".join(parts) + ". Refusing to start: keys are generated only for an empty database "
            "(see docs/operations.md, Keys)."
        )
