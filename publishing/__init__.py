"""Deliveries built on the registry's event log: agency sync, feeds, exports (see the open issues)."""
