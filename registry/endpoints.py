"""Where the registry may push: agency subscriptions and bank watchlists share one rule."""

from __future__ import annotations

import ipaddress
import urllib.parse

from registry.problems import Problem

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL_LENGTH = 2048


def validate_push_endpoint(url: str, *, pointer: str, code: str) -> str:
    """HTTPS only, except plain HTTP to this machine (tests and the demo)."""
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
            422,
            code,
            "the endpoint URL needs a host, and no credentials or fragment",
            pointer=pointer,
        )
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and _loopback(host):
        return url
    raise Problem(
        422,
        code,
        "endpoints must use https:// (plain http only to localhost)",
        pointer=pointer,
    )


def _loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
