"""The one way the registry sends to agencies and banks: an httpx client per endpoint whose
transport resolves the name once, keeps only the addresses the push rule permits
(`registry.endpoints.PushPolicy`), and connects to the first of them, keeping the name for
TLS (SNI and certificate check) and the `Host` header. No second resolution happens between
the check and the connection, so a name re-pointed meanwhile (DNS rebinding) cannot redirect
it. Redirects are never followed, proxies from the environment never used.

`post` gives each request a total deadline (connection to the last byte read, not per read,
so a receiver trickling one byte at a time cannot hold a worker) and reads at most a small
part of the answer, which is never stored: a 2xx status is all the registry needs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

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


def endpoint_client(
    policy: PushPolicy, deadline: float, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """A client for one endpoint (its own connections: none shared across endpoints).
    `verify`: the system's trust store by default (tests pass their own authority)."""
    return httpx.AsyncClient(
        transport=PinnedTransport(policy, verify),
        timeout=httpx.Timeout(deadline),
        follow_redirects=False,
        trust_env=False,
    )


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
