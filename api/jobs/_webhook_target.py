"""Where a webhook may go: the URL's rules, and the one address a delivery connects to.

A webhook is a request the service makes on a tenant's behalf, so it must not be a way into
the service's own network (SSRF). The host is resolved once per attempt, every address it
resolves to is checked, and the delivery connects to the first checked one
(``_webhook_http``): resolving again to connect would let a DNS answer that changes between the
two (rebinding) reach loopback.

Refused unless ``webhook_allow_private``: every address that is not globally routable (private,
loopback, link-local, shared, reserved, multicast, unspecified), and every IPv6 form that
carries an IPv4 address inside it, whatever that address is: IPv4-mapped (``::ffff:a.b.c.d``),
IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``), 6to4
(``2002::/16``) and Teredo (``2001::/32``). Through a translator or tunnel each of these reaches
an IPv4 host that the IPv4 rules never saw. Ports: 80 and 443 unless ``webhook_ports`` widens
them, so a webhook cannot probe the other services of a host.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from genseal.errors import InputError

__all__ = ["WebhookTarget", "address_refusal", "resolve_target"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose addresses carry an IPv4 address that a gateway or tunnel reaches.
_EMBEDDING_IPV4 = (
    (ipaddress.ip_network("64:ff9b::/96"), "NAT64"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "local-use NAT64"),
    (ipaddress.ip_network("2002::/16"), "6to4"),
    (ipaddress.ip_network("2001::/32"), "Teredo"),
    (ipaddress.ip_network("::/96"), "IPv4-compatible"),
)


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL: the host as written (for TLS and the Host header), its port and
    the addresses it resolved to, every one allowed."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        for network, name in _EMBEDDING_IPV4:
            if address in network:
                return f"a {name} IPv6 address (it carries an IPv4 address)"
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "a non-public address"
    return None


def resolve_target(url: str, *, allow_private: bool, ports: Collection[int]) -> WebhookTarget:
    """Check ``url`` and resolve its host once; InputError saying why when it is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"webhook URL {url!r} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise InputError("webhook URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InputError(f"webhook URL {url!r} has an invalid port") from exc
    if ports and port not in ports:
        allowed = ", ".join(str(p) for p in sorted(ports))
        raise InputError(
            f"webhook port {port} is not allowed (allowed: {allowed})",
            hint="GENSEAL_WEBHOOK_PORTS widens the list",
        )
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"webhook host {host!r} does not resolve") from exc
    # getaddrinfo reads every IPv4 notation (decimal, octal, short forms) as the address it is.
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise InputError(f"webhook host {host!r} does not resolve")
    if not allow_private:
        for text in addresses:
            reason = address_refusal(ipaddress.ip_address(text))
            if reason is not None:
                raise InputError(
                    f"webhook host {host!r} resolves to {reason} ({text})",
                    hint="GENSEAL_WEBHOOK_ALLOW_PRIVATE=true allows private networks",
                )
    return WebhookTarget(url=url, host=host, port=port, addresses=addresses)
