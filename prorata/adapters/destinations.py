"""Where webhook deliveries may go: public addresses only, unless the operator allows more.

A tenant chooses its endpoints' URLs. Without a check, a URL naming 127.0.0.1, a private
network or a cloud metadata address (169.254.169.254) would have the dispatcher POST into
the network it runs in (server-side request forgery). Invariants:

- a delivery's host is resolved once, and every address it resolves to must be allowed,
  else nothing is sent (:class:`DestinationRefused`, whose text names the address and why);
- the request then goes to the first address resolved, with the URL's host in the ``Host``
  header and, for https, as the TLS server name (certificates are still checked against
  it): a DNS answer that changes between the check and the connection (rebinding) cannot
  send it elsewhere. An https connection, verified for one name, is closed after its
  request (the client pools connections by address, and another name may share it);
- allowed by default: global unicast addresses (:attr:`ipaddress.IPv4Address.is_global`,
  not multicast); an IPv4-mapped IPv6 address is judged as its IPv4 address. With
  ``private=True`` (``PRORATA_WEBHOOKS_PRIVATE=allow``) every address is allowed:
  development, tests, a receiver on the operator's own network.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

ENV = "PRORATA_WEBHOOKS_PRIVATE"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The URL's host is, or resolves to, an address deliveries may not reach."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for a TCP connection, in the resolver's order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def why_not_public(address: Address) -> str | None:
    """Why deliveries may not reach ``address`` by default; None if they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a global address (shared or reserved for special use)"
    return None


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Target:
    """How to send a request so that it reaches the checked address: the URL with that
    address as its host, the ``Host`` header and the request extensions (TLS server name)."""

    url: str
    headers: Mapping[str, str]
    extensions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Destinations:
    """The addresses deliveries may reach (see the module's invariants); ``resolver`` turns
    a host and port into addresses (DNS by default; tests give their own)."""

    private: bool = False
    resolver: Callable[[str, int], list[str]] = resolve

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Destinations:
        """``PRORATA_WEBHOOKS_PRIVATE=allow`` allows every address; unset or empty, public
        ones only; any other value is refused (a typo must not open the network)."""
        value = environ.get(ENV, "").strip()
        if value not in ("", "allow"):
            raise ValueError(f"{ENV}={value!r}: expected 'allow' or nothing")
        return cls(private=value == "allow")

    def target(self, url: str) -> Target:
        """Where to send a request for ``url``; raises :class:`DestinationRefused`."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:  # a port that is not a number from 0 to 65535
            raise DestinationRefused(f"{url!r} cannot be read: {exc}") from exc
        if not host:
            raise DestinationRefused(f"{url!r} has no host")
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:  # ValueError: not an address
            raise DestinationRefused(f"{host} does not resolve: {exc}") from exc
        if not addresses:
            raise DestinationRefused(f"{host} resolves to no address")
        if not self.private:
            for address in addresses:
                reason = why_not_public(address)
                if reason is not None:
                    shown = f"{host} is" if _literal(host) else f"{host} resolves to {address},"
                    raise DestinationRefused(
                        f"{shown} {reason}: webhooks reach public addresses only "
                        f"(the operator may set {ENV}=allow)"
                    )
        address = addresses[0]
        userinfo, _, host_header = parts.netloc.rpartition("@")  # as the client would send it
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        netloc = f"{userinfo}@{netloc}" if userinfo else netloc
        pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        if parts.scheme != "https":
            return Target(pinned, {"Host": host_header})
        # the connection's certificate was checked for this name; connections are pooled by
        # address, so one is not kept for a later request naming another host there
        headers = {"Host": host_header, "Connection": "close"}
        return Target(pinned, headers, {"sni_hostname": host})
