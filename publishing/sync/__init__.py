"""Agency linkage sync (2010 Opinion Art. 12, 13, 17, 19-21, 24): subscriptions with field
profiles, signed push delivery, pull with acknowledgements, snapshots, status."""
