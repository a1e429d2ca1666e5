"""`registry bench readers`: every reader of listing events catches up on its own copy of
the imported list, and its figures are per event of the log it read."""

from __future__ import annotations

from bench.readers import READERS, run_readers_bench


def test_each_reader_reads_every_event_of_the_imported_list_on_its_own_copy() -> None:
    result = run_readers_bench(count=40)
    readers = result["readers"]
    assert set(readers) == set(READERS)
    assert result["import"]["created"] == 40
    # The log holds the demo set-up's events and one publication a listing: every reader
    # read all of it, each from the start (a copy another reader had moved would read none).
    events = {figures["log_events"] for figures in readers.values()}
    assert len(events) == 1 and events.pop() >= 40
    for name, figures in readers.items():
        assert figures["write_transactions"] >= 1, name
        assert 0 < figures["write_transaction_us_per_event"] <= figures["wall_us_per_event"], name
    total = sum(figures["cpu_us_per_event"] for figures in readers.values())
    assert result["all_readers"]["cpu_us_per_event"] == round(total, 1)
