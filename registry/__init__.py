"""The registry: the source of truth for court-certified defaulter listings."""
