"""Which callback URLs the shop will call: http(s) only, no credentials, public addresses only (no SSRF)."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

CALLBACK_URL_MAX_LENGTH = 500


class CallbackUrlRefused(ValueError):
    """The shop will not call this URL; `reason` says why, in words fit for an API client."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CallbackHostUnresolved(CallbackUrlRefused):
    """The host did not resolve: maybe a typo, maybe a passing DNS failure (the task retries it)."""


def callback_url_validate(url: str) -> str:
    """Return `url` if the shop may POST to it, else raise `CallbackUrlRefused`.

    The shop's workers sit inside the network, so a URL a client chooses must not reach what only
    they can reach (SSRF): every address the host resolves to must be public, not just the first.
    `CALLBACK_ALLOW_PRIVATE_URLS` lifts that for the demo and the tests, never in production.
    """
    if len(url) > CALLBACK_URL_MAX_LENGTH:
        raise CallbackUrlRefused(f"must be at most {CALLBACK_URL_MAX_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"}:
        raise CallbackUrlRefused("must be an http or https URL")
    if "@" in parts.netloc:
        raise CallbackUrlRefused("must not contain credentials; the shop signs its requests instead")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise CallbackUrlRefused("has an invalid port") from exc
    if not host:
        raise CallbackUrlRefused("must name a host")
    if getattr(settings, "CALLBACK_ALLOW_PRIVATE_URLS", False):
        return url
    for address in _addresses_of(host, port or (443 if parts.scheme.lower() == "https" else 80)):
        if _is_internal(address):
            raise CallbackUrlRefused(f"must resolve to public addresses only, not {address}")
    return url


def _addresses_of(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackHostUnresolved(f"host {host!r} does not resolve") from exc
    # An IPv6 link-local answer may carry a scope ("fe80::1%eth0"): the scope is no part of the address.
    return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
        # Also what is neither private nor global, such as carrier-grade NAT (100.64.0.0/10).
        or not address.is_global
    )
