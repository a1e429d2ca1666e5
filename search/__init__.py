"""The public search over published listings, fed by the registry's event log (see the open issues)."""
