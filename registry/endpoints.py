"""Where the registry may push: agency subscriptions and bank watchlists share one rule.

A push endpoint is an `https://` URL whose host is a public address: loopback, private,
link-local, shared (100.64.0.0/10, carrier-grade NAT), multicast, unspecified, reserved and
IPv4-embedding IPv6 addresses (IPv4-mapped, 6to4, Teredo, NAT64) are refused, so that a bank
or an agency cannot point the registry at its own network (the cloud metadata service, a
database, an admin port). An operator opens named hosts or networks with
`REGISTRY_PUSH_ALLOWED_NETWORKS` (private deployments, tests); plain `http://` needs
`REGISTRY_PUSH_ALLOW_HTTP` and then reaches the allowed networks only.

The rule is applied when an endpoint is set (`check_url`, then `vet` resolves the name) and
again at each send (`permitted_addresses`, used by the outbound transport), after resolving
the name, on the very addresses the connection then goes to: a name that resolved to a public
address when set and to a private one later (DNS rebinding) is refused at the send.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.problems import Problem

if TYPE_CHECKING:
    from registry.settings import Settings

MAX_URL_LENGTH = 2048
RESOLVE_SECONDS = 2.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 6598 shared space (carrier-grade NAT) and RFC 6890 protocol assignments: not
# `is_private` on every Python version.
_SPECIAL_V4 = (ipaddress.IPv4Network("100.64.0.0/10"), ipaddress.IPv4Network("192.0.0.0/24"))
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}$")


class EndpointRefused(Exception):
    """The endpoint may not be reached (at a send: nothing was sent)."""


def is_public(address: IPAddress) -> bool:
    """An address the registry may push to without the operator's say-so."""
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None
        or address.sixtofour is not None
        or address.teredo is not None
        or any(address in net for net in _NAT64)
    ):
        return False
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv4Address) and any(address in net for net in _SPECIAL_V4))
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    ):
        return False
    return bool(address.is_global)


def parse_allowed(text: str) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """`REGISTRY_PUSH_ALLOWED_NETWORKS`: networks (or single addresses) and host names,
    separated by commas or spaces. Raises ValueError on an entry that is neither."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if not name.isascii() or not _HOST_NAME.match(name):
            raise ValueError(f"not a network nor a host name: {entry!r}")
        hosts.add(name)
    return tuple(networks), frozenset(hosts)


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class PushPolicy:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> PushPolicy:
        networks, hosts = parse_allowed(settings.push.allowed_networks)
        return cls(networks, hosts, settings.push.allow_http)

    def _in_networks(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)

    def permits(self, address: IPAddress, scheme: str) -> bool:
        """May a connection for `scheme` go to `address`?"""
        if self._in_networks(address):
            return scheme == "https" or self.allow_http
        return scheme == "https" and is_public(address)

    def host_named(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    # ---- when an endpoint is set ----

    def check_url(self, url: str, *, pointer: str, code: str) -> str:
        """The URL's form, its scheme, and its host when that is an address. Names are
        resolved by `vet`, which the callers run next."""
        if not url or len(url) > MAX_URL_LENGTH or url != url.strip() or any(ord(ch) < 33 for ch in url):
            raise Problem(422, code, "give an absolute https:// URL", pointer=pointer)
        try:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname
            _ = parts.port  # raises on a malformed port
        except ValueError as exc:
            raise Problem(422, code, "the endpoint URL does not parse", pointer=pointer) from exc
        if not host or parts.username is not None or parts.password is not None or parts.fragment:
            raise Problem(
                422, code, "the endpoint URL needs a host, and no credentials or fragment", pointer=pointer
            )
        if not host.isascii():
            raise Problem(422, code, "give the host in its ASCII (punycode) form", pointer=pointer)
        if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not self.allow_http):
            raise Problem(422, code, "endpoints must use https://", pointer=pointer)
        address = _address(host)
        if address is None and not _HOST_NAME.match(host.removesuffix(".")):
            # An empty or over-long label would fail only in the resolver's IDNA step.
            raise Problem(422, code, "the endpoint's host is not a valid host name", pointer=pointer)
        if address is not None and not self.permits(address, parts.scheme):
            raise Problem(422, code, _refusal(parts.scheme), pointer=pointer)
        return url

    async def vet(self, url: str, *, pointer: str, code: str) -> str:
        """`check_url`, then the name resolved: refused when it resolves only to addresses the
        rule forbids. A name that does not resolve yet is accepted over https (it is checked
        again at each send) and refused over http (which must go to an allowed network)."""
        self.check_url(url, pointer=pointer, code=code)
        parts = urllib.parse.urlsplit(url)
        host = str(parts.hostname)
        if _address(host) is not None or self.host_named(host):
            return url
        try:
            addresses = await asyncio.wait_for(
                resolve(host, parts.port or (443 if parts.scheme == "https" else 80)), RESOLVE_SECONDS
            )
        except (OSError, TimeoutError, UnicodeError):
            addresses = []
        if not addresses and parts.scheme == "https":
            return url
        if not any(self.permits(a, parts.scheme) for a in addresses):
            raise Problem(422, code, _refusal(parts.scheme), pointer=pointer)
        return url

    # ---- at each send ----

    async def permitted_addresses(self, scheme: str, host: str, port: int) -> list[str]:
        """The addresses a send to `host` may connect to, resolved once, in resolver order.
        Raises EndpointRefused when there are none."""
        if scheme not in ("https", "http") or (scheme == "http" and not self.allow_http):
            raise EndpointRefused(f"scheme {scheme} is not allowed")
        literal = _address(host)
        try:
            addresses = [literal] if literal is not None else await resolve(host, port)
        except (OSError, UnicodeError) as exc:  # UnicodeError: IDNA refused a name stored earlier
            raise EndpointRefused("the endpoint's name does not resolve") from exc
        named = literal is None and self.host_named(host)
        permitted = [str(a) for a in addresses if named or self.permits(a, scheme)]
        if not permitted:
            raise EndpointRefused("the endpoint resolves to no address pushes may reach")
        return permitted


def _refusal(scheme: str) -> str:
    if scheme == "http":
        return "plain http:// endpoints may reach the operator's allowed networks only"
    return "endpoints must be public addresses (not loopback, private, link-local, shared or multicast)"


async def resolve(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _unique(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    seen: list[IPAddress] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    return seen
