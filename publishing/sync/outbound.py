"""The one way the registry sends to agencies and banks: an httpx client per endpoint whose
transport resolves the name once, keeps only the addresses the push rule permits
(`registry.endpoints.PushPolicy`), and connects to the first of them, keeping the name for
TLS (SNI and certificate check) and the `Host` header. No second resolution happens between
the check and the connection, so a name re-pointed meanwhile (DNS rebinding) cannot redirect
it. Redirects are never followed, proxies from the environment never used.

`post` gives each request a total deadline (connection to the last byte read, not per read,
so a receiver trickling one byte at a time cannot hold a worker) and reads at most a small
part of the answer, which is never stored: a 2xx status is all the registry needs.

`EndpointClients` keeps each endpoint's client across passes, all over one TLS context built
once per process: building one (loading the trust store) cost a pass 1.3-1.7 s on a loaded
machine, and a pass woken by every commit paid it each time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import urllib.parse
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from registry.endpoints import EndpointRefused, PushPolicy

logger = logging.getLogger("publishing.sync.outbound")


class PinnedTransport(httpx.AsyncBaseTransport):
    def __init__(self, policy: PushPolicy, verify: ssl.SSLContext | bool = True) -> None:
        self._policy = policy
        self._inner = httpx.AsyncHTTPTransport(retries=0, trust_env=False, verify=verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        address = (await self._policy.permitted_addresses(url.scheme, host, port))[0]
        if address != host:
            request.url = url.copy_with(host=address)
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The trust store httpx uses by default (certifi's), loaded once per process; never from
    the environment (`SSL_CERT_FILE`), as proxies are not."""
    return httpx.create_ssl_context(trust_env=False)


def endpoint_client(
    policy: PushPolicy, deadline: float, verify: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """A client for one endpoint (its own connections: none shared across endpoints).
    `verify`: the process's trust store by default (tests pass their own authority)."""
    return httpx.AsyncClient(
        transport=PinnedTransport(policy, verify or default_tls_context()),
        timeout=httpx.Timeout(deadline),
        follow_redirects=False,
        trust_env=False,
    )


class EndpointClients:
    """One client per endpoint (scheme, host and port), kept across passes, so that a pass
    neither builds a client nor opens a connection anew; at most `capacity` kept, the least
    recently used idle ones closed first. Endpoints never share a client (nor connections):
    one slow endpoint holds its own connections only. The push rule still runs at each
    request (`PinnedTransport`): a kept connection is reused only for the address the name
    resolved to and was checked at that request."""

    def __init__(
        self, policy: PushPolicy, deadline: float, capacity: int, verify: ssl.SSLContext | None = None
    ) -> None:
        self._policy = policy
        self._deadline = deadline
        self._capacity = max(1, capacity)
        self._verify = verify
        # endpoint -> (client, deliveries using it now)
        self._clients: OrderedDict[tuple[str, str, int | None], tuple[httpx.AsyncClient, int]] = OrderedDict()
        self.made = 0

    @asynccontextmanager
    async def client(self, url: str) -> AsyncIterator[httpx.AsyncClient]:
        parts = urllib.parse.urlsplit(url)
        key = (parts.scheme, (parts.hostname or "").lower(), parts.port)
        held = self._clients.get(key)
        if held is None:
            held = (endpoint_client(self._policy, self._deadline, self._verify), 0)
            self.made += 1
        http = held[0]
        self._clients[key] = (http, held[1] + 1)
        self._clients.move_to_end(key)
        try:
            yield http
        finally:
            now = self._clients.get(key)
            if now is not None and now[0] is http:
                self._clients[key] = (http, now[1] - 1)
            await self._trim()

    async def _trim(self) -> None:
        idle = [key for key, (_, users) in self._clients.items() if users == 0]
        for key in idle[: max(0, len(self._clients) - self._capacity)]:
            http, _ = self._clients.pop(key)
            await http.aclose()

    async def aclose(self) -> None:
        clients = [http for http, _ in self._clients.values()]
        self._clients.clear()
        for http in clients:
            await http.aclose()


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline: float,
    max_answer_bytes: int,
) -> str | None:
    """POST within `deadline` seconds in all; None on a 2xx, else what went wrong (never the
    answer's body). At most `max_answer_bytes` of the answer are read, then the connection
    is dropped."""
    try:
        async with (
            asyncio.timeout(deadline),
            http.stream("POST", url, content=body, headers=headers) as answer,
        ):
            read = 0
            async for chunk in answer.aiter_raw():
                read += len(chunk)
                if read > max_answer_bytes:
                    break
            return None if answer.is_success else f"HTTP {answer.status_code}"
    except TimeoutError:
        return "deadline exceeded"
    except EndpointRefused as exc:
        logger.warning("push refused before sending: %s", exc)
        return "endpoint refused: " + str(exc)
    except httpx.HTTPError as exc:
        return type(exc).__name__
