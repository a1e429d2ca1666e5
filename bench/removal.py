"""Removal to gone everywhere: from a court's signed removal to its effect on every public
surface a removal must reach, measured against `registry serve` with its background jobs on.

Surfaces (each timed from just before the removal's POST to the first poll that shows it):
- `search_entry`: the public search (`/v1/public/defaulters?q=<name>&court=<court>`) no
  longer lists the entry;
- `detail_json`: `/v1/public/defaulters/<id>` answers 404;
- `detail_page`: the web page `/defaulters/<id>` no longer answers 200;
- `delta_api`: `/v1/publications` carries the removal;
- `feed`: the JSON feed's page ending at the removal (`/feeds/feed.json?before=<seq+1>`)
  carries it (the Atom and RSS feeds are rendered from the same publications), checked as
  soon as the delta API has given the removal's seq;
- `bank_check`: a bank's check of the debtor's ID number no longer returns the listing;
- `agency_push`: a `credit_reference` push receiver has acknowledged (answered 200 to) the
  removal event.

Removals are sent by one thread at random intervals without waiting for the previous one to
be gone (as courts send them), while one poller checks every pending removal on every
surface it has not yet left, every `POLL_S`, the surfaces in four threads side by side (the
delta API and feed, the bank check, the detail JSON and page, the search and the push): a
poll's resolution is its cycle, the slowest of the four, reported.
With `batch_envelopes`, 10,000-listing batches are ingested over the batch endpoint back to
back and removals are sent only while a batch is in flight; the figures are taken over the
removals sent while one was (a removal sent once the batches have run out is left out and
counted).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import latency_summary, load_average, timed_figure
from registry.identity.signing import sign_envelope

SURFACES = (
    "search_entry",
    "detail_json",
    "detail_page",
    "delta_api",
    "feed",
    "bank_check",
    "agency_push",
)
POLL_S = 0.02


@dataclass(frozen=True)
class Target:
    listing_id: str
    court_code: str
    name: str
    id_number: str


@dataclass
class _Pending:
    target: Target
    sent_at: float
    during_batch: bool
    seen: dict[str, float] = field(default_factory=dict)
    seq: int | None = None
    answered_s: float = 0.0  # the removal request's own latency (committed when answered)


@dataclass
class RemovalRun:
    base: str
    admin_key: str
    bank_key: str
    signers: dict[str, tuple[str, bytes]]
    today: date
    pushed_at: Callable[[str], float | None]  # when the push receiver acknowledged a removal
    delta_after: int  # the delta API's position before the first removal
    pending: list[_Pending] = field(default_factory=list)
    done: list[_Pending] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cycles: list[float] = field(default_factory=list)
    # Every removal the delta API has shown, with its seq and when: a removal can show there
    # before its POST has returned (and joined `pending`), and the cursor moves past it.
    delta_seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def _envelope(self, target: Target) -> dict[str, Any]:
        key_id, raw = self.signers[target.court_code]
        removal = {
            "listing_id": target.listing_id,
            "reason": "performed",
            "effective_on": self.today.isoformat(),
            "triggered_on": self.today.isoformat(),
            "basis_document": "（2026）京0105执恢1号",
        }
        return sign_envelope("removal", removal, Ed25519PrivateKey.from_private_bytes(raw), key_id)

    def send(
        self,
        targets: list[Target],
        spacing: tuple[float, float],
        in_batch: threading.Event | None,
        batches_over: threading.Event | None = None,
    ) -> None:
        rng = random.Random(23)  # noqa: S311 - a reproducible arrival pattern, not a secret
        with httpx.Client(base_url=self.base, timeout=60) as http:
            for target in targets:
                if in_batch is not None and not (batches_over and batches_over.is_set()):
                    in_batch.wait(30)  # between two batches; reported if none was in flight
                envelope = self._envelope(target)
                sent = time.perf_counter()
                response = http.post(
                    f"/v1/listings/{target.listing_id}/removal",
                    json=envelope,
                    headers={"Authorization": f"Bearer {self.admin_key}"},
                )
                answered = time.perf_counter() - sent
                if response.status_code != 200:
                    raise RuntimeError(f"bench: removal refused: {response.status_code} {response.text}")
                with self.lock:
                    self.pending.append(
                        _Pending(
                            target,
                            sent,
                            during_batch=in_batch is not None and in_batch.is_set(),
                            answered_s=answered,
                        )
                    )
                time.sleep(rng.uniform(*spacing))

    def poll(self, sending: threading.Thread, seconds: float = 120) -> None:
        """Until every removal sent has left every surface (or `seconds` after the last send)."""
        deadline: float | None = None
        groups = (
            self._poll_delta_and_feed,
            self._poll_bank_check,
            self._poll_details,
            self._poll_search_and_push,
        )
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(httpx.Client(base_url=self.base, timeout=60)) for _ in groups]
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=len(groups)))
            while True:
                with self.lock:
                    pending = list(self.pending)
                if not sending.is_alive() and deadline is None:
                    deadline = time.perf_counter() + seconds
                if not pending and not sending.is_alive():
                    return
                if deadline is not None and time.perf_counter() > deadline:
                    stuck = {s for p in pending for s in SURFACES if s not in p.seen}
                    raise RuntimeError(f"bench: removals not gone after {seconds} s from {sorted(stuck)}")
                started = time.perf_counter()
                if pending:
                    # The surfaces' requests side by side: one after another, a removal's
                    # last surface was seen up to a whole cycle late (2.2 s under batches
                    # at 5,000,000), the poller's delay rather than the server's.
                    for future in [
                        pool.submit(poll, http, pending) for poll, http in zip(groups, clients, strict=True)
                    ]:
                        future.result()
                    self.cycles.append(time.perf_counter() - started)
                with self.lock:
                    finished = [p for p in self.pending if len(p.seen) == len(SURFACES)]
                    self.pending = [p for p in self.pending if len(p.seen) < len(SURFACES)]
                    self.done.extend(finished)
                time.sleep(POLL_S)

    def _poll_delta_and_feed(self, http: httpx.Client, pending: list[_Pending]) -> None:
        # The delta API: every removal since the last poll, one request per page.
        while True:
            page = http.get("/v1/publications", params={"after": self.delta_after, "limit": 1000}).json()
            now = time.perf_counter()
            for entry in page["items"]:
                removal = entry.get("removal")
                if entry["event"] == "removed" and removal:
                    self.delta_seen.setdefault(removal["id"], (entry["seq"], now))
            if page["next_after"] == self.delta_after or not page["items"]:
                break
            self.delta_after = page["next_after"]
        for item in pending:
            if item.target.listing_id in self.delta_seen:
                item.seq, at = self.delta_seen[item.target.listing_id]
                item.seen.setdefault("delta_api", at)
        # The feed, as soon as the delta API has given the removal's seq.
        for item in pending:
            if "feed" not in item.seen and item.seq is not None:
                feed = http.get("/feeds/feed.json", params={"before": item.seq + 1})
                feed.raise_for_status()
                if any(entry["_registry"]["seq"] == item.seq for entry in feed.json()["items"]):
                    _seen(item, "feed")

    def _poll_bank_check(self, http: httpx.Client, pending: list[_Pending]) -> None:
        # Every pending subject in one request.
        asking = [p for p in pending if "bank_check" not in p.seen]
        if not asking:
            return
        body = {
            "subjects": [{"id_number": p.target.id_number} for p in asking],
            "purpose": "credit_review",
            "reference": "removal-bench",
        }
        answer = http.post("/v1/checks", json=body, headers={"Authorization": f"Bearer {self.bank_key}"})
        answer.raise_for_status()
        for item, result in zip(asking, answer.json()["results"], strict=True):
            if all(entry["listing_id"] != item.target.listing_id for entry in result.get("listings", [])):
                _seen(item, "bank_check")

    def _poll_details(self, http: httpx.Client, pending: list[_Pending]) -> None:
        for item in pending:
            listing_id = item.target.listing_id
            if (
                "detail_json" not in item.seen
                and http.get(f"/v1/public/defaulters/{listing_id}").status_code == 404
            ):
                _seen(item, "detail_json")
            if "detail_page" not in item.seen and http.get(f"/defaulters/{listing_id}").status_code != 200:
                _seen(item, "detail_page")

    def _poll_search_and_push(self, http: httpx.Client, pending: list[_Pending]) -> None:
        for item in pending:
            target = item.target
            if "search_entry" not in item.seen:
                found = http.get(
                    "/v1/public/defaulters",
                    params={"q": target.name, "court": target.court_code, "per_page": 100},
                )
                found.raise_for_status()
                if all(hit["id"] != target.listing_id for hit in found.json()["hits"]):
                    _seen(item, "search_entry")
            if "agency_push" not in item.seen:
                acknowledged = self.pushed_at(target.listing_id)
                if acknowledged is not None:
                    item.seen["agency_push"] = acknowledged

    def figures(self, *, during_batches: bool) -> dict[str, Any]:
        """With `during_batches`, over the removals sent while a batch was in flight only: one
        sent after the last batch ended would be an idle figure."""
        done = [p for p in self.done if p.during_batch] if during_batches else self.done
        per_surface = {
            surface: latency_summary([p.seen[surface] - p.sent_at for p in done], unit="s")
            for surface in SURFACES
        }
        everywhere = latency_summary([max(p.seen.values()) - p.sent_at for p in done], unit="s")
        return {
            "removals": len(done),
            "sent_while_a_batch_was_in_flight": sum(p.during_batch for p in self.done),
            "sent_after_the_batches_ended_left_out": len(self.done) - len(done),
            "poll_cycle": latency_summary(self.cycles, unit="s"),
            # The removal's POST until its answer: the commit, before any follower ran.
            "removal_request_s": latency_summary([p.answered_s for p in done], unit="s"),
            "gone_everywhere_s": everywhere,
            "per_surface_s": per_surface,
        }


def _seen(item: _Pending, surface: str) -> None:
    item.seen.setdefault(surface, time.perf_counter())


def run_phase(
    run: RemovalRun,
    targets: list[Target],
    *,
    spacing: tuple[float, float],
    batch: Callable[[threading.Event, threading.Event], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Send `targets`' removals and time them on every surface; with `batch`, a function
    that ingests batches back to back (setting its first event while one is in flight)
    until its second event is set, once the removals are sent."""
    started_load = load_average()
    in_batch = threading.Event() if batch is not None else None
    stop = threading.Event()
    batches_over = threading.Event()  # every batch sent: removals stop waiting for one
    sender = threading.Thread(target=run.send, args=(targets, spacing, in_batch, batches_over), daemon=True)
    batcher = None
    batches: dict[str, Any] = {}
    if batch is not None and in_batch is not None:

        def ingest() -> None:
            try:
                batches.update(batch(in_batch, stop))
            finally:
                batches_over.set()

        batcher = threading.Thread(target=ingest, daemon=True)
        batcher.start()
        in_batch.wait(60)
    sender.start()
    run.poll(sender)
    sender.join()
    stop.set()
    if batcher is not None:
        batcher.join()
    figures = run.figures(during_batches=batch is not None)
    if batches:
        figures["concurrent_batches"] = batches
    run.done, run.cycles = [], []
    return timed_figure(figures, started_load)
