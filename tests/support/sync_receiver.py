"""A real HTTP receiver for pushes (standard library `http.server` in a thread), scripted to
fail in the ways agencies do: 500s, answers slower than the registry waits, dropped
connections, redirects, answers trickled a byte at a time, huge answers. It deduplicates
events by idempotency key, as the README asks receivers to."""

from __future__ import annotations

import json
import select
import socket
import ssl
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
    # "trickle": the answer's body, one byte every trickle_seconds, until the registry hangs up.
    trickle_seconds: float = 1.0
    # "huge": an answer body of huge_bytes.
    huge_bytes: int = 256 * 1024 * 1024
    answer_bytes_sent: int = 0  # body bytes of trickled and huge answers the registry took
    hung_up: int = 0  # trickled or huge answers the registry stopped reading
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
                elif action.startswith("redirect:"):
                    self.send_response(307)
                    self.send_header("Location", action.split(":", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif action in ("trickle", "huge"):
                    receiver._apply(body)
                    self._stream(trickle=action == "trickle")
                else:
                    if action.startswith("sleep:"):
                        time.sleep(float(action.split(":", 1)[1]))
                    receiver._apply(body)
                    self._answer(200)
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1

        def _stream(self, *, trickle: bool) -> None:
            """A 200 whose body never ends in time (trickle) or is enormous (huge); stops when
            the registry hangs up."""
            size = 10**9 if trickle else receiver.huge_bytes
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            conn: socket.socket = self.connection
            chunk = b"x" if trickle else b"x" * 65536
            sent = 0
            try:
                while sent < size:
                    if trickle:
                        readable, _, _ = select.select([conn], [], [], receiver.trickle_seconds)
                        if readable and not conn.recv(1, socket.MSG_PEEK):
                            break  # the registry closed the connection
                    conn.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            with receiver.lock:
                receiver.answer_bytes_sent += sent
                receiver.hung_up += sent < size
            self.close_connection = True

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass

    return Handler


@contextmanager
def running_receiver(
    *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", **options: Any
) -> Iterator[Receiver]:
    """A receiver on loopback; with `tls` (a server context), over https, its URL naming
    `host` (which must resolve to 127.0.0.1 and be in the certificate)."""
    receiver = Receiver(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    receiver.url = f"{scheme}://{host}:{server.server_address[1]}/registry/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
