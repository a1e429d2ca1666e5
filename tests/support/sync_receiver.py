"""A real HTTP receiver for pushes (standard library `http.server` in a thread), scripted to
fail in the ways agencies do: 500s, answers slower than the registry waits, dropped
connections. It deduplicates events by idempotency key, as the README asks receivers to."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    action: str


@dataclass
class Receiver:
    url: str = ""
    script: deque[str] = field(default_factory=deque)  # actions for the next requests
    default: str = "ok"
    slow_seconds: float = 1.5
    deliveries: list[Delivery] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # every event applied, duplicates too
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique(self) -> list[dict[str, Any]]:
        """Events after deduplication by idempotency key, in the order first applied."""
        seen: set[str] = set()
        out = []
        with self.lock:
            for event in self.received:
                if event["idempotency_key"] not in seen:
                    seen.add(event["idempotency_key"])
                    out.append(event)
        return out

    def _apply(self, body: bytes) -> None:
        with self.lock:
            pushed = json.loads(body)
            # Agency pushes carry "events"; bank watchlist pushes carry "changes".
            self.received.extend(pushed["events"] if "events" in pushed else pushed["changes"])


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                action = receiver.script.popleft() if receiver.script else receiver.default
                receiver.in_flight += 1
                receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                receiver.deliveries.append(
                    Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body, action)
                )
            try:
                if action == "500":
                    self._answer(500)
                elif action == "close":
                    self.close_connection = True  # no answer at all: the connection drops
                elif action == "slow":
                    receiver._apply(body)  # applied, but the answer comes after the registry gave up
                    time.sleep(receiver.slow_seconds)
                    self._answer(200)
                else:
                    if action.startswith("sleep:"):
                        time.sleep(float(action.split(":", 1)[1]))
                    receiver._apply(body)
                    self._answer(200)
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass

    return Handler


@contextmanager
def running_receiver(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/registry/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
