"""SSRF guard: which addresses a user-supplied URL may reach, resolved exactly once.

Only globally routable unicast addresses are allowed. Refused, with the reason reported:
loopback, RFC 1918 private, link-local (169.254/16 with the cloud metadata address, fe80::/10),
CGNAT (100.64/10), multicast, unspecified, broadcast/reserved, documentation and benchmarking
ranges, IPv6 ULA (fc00::/7) and site-local, IPv4-mapped IPv6 (::ffff:0:0/96) and the
IPv4-embedding transition ranges (6to4, Teredo, NAT64 to a refused IPv4). Every name is
resolved once; the caller connects to the address that was checked, so a second DNS answer
(DNS rebinding) can never be used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from service.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_BLOCKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes 255.255.255.255
)
_V6_BLOCKS: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "ipv4-mapped"),
    ("::/96", "ipv4-compatible"),
    ("64:ff9b:1::/48", "nat64-local"),
    ("100::/64", "discard"),
    ("2001::/32", "teredo"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "ula"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_BLOCKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why) for net, why in _V4_BLOCKS + _V6_BLOCKS
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# Appended to every refusal of a private address: the operator's way to allow on-premise sources.
ALLOW_HINT = (
    " (an operator can allow on-premise sources with the setting "
    "AVSERVE_FETCH__ALLOW_PRIVATE_NETWORKS, e.g. 10.0.0.0/8)"
)


def parse_networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def forbidden_reason(address: str | IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``address`` may not be fetched from, or None when it may."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    for net, why in _BLOCKS:
        if ip.version == net.version and ip in net:
            return why
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64:
        inner = forbidden_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), allowed)
        return f"nat64-{inner}" if inner else None
    if not ip.is_global:
        return "non-global"
    return None


@dataclass(frozen=True)
class ResolvedHost:
    host: str
    port: int
    address: str  # the checked address to connect to


async def resolve_checked(
    host: str, port: int, allowed: Sequence[IPNetwork], *, exempt: bool = False
) -> ResolvedHost:
    """Resolve ``host`` once and check every address it maps to.

    All answers must pass (a name that also points inside the network is refused even when
    another answer is public). ``exempt`` skips the check (explicitly allow-listed hosts) but
    still pins the address.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise FetchError(f"cannot resolve {host!r}", code="url_unreachable") from e
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise FetchError(f"{host!r} has no address", code="url_unreachable")
    if not exempt:
        for address in addresses:
            why = forbidden_reason(address, allowed)
            if why is not None:
                raise FetchError(
                    f"{host!r} resolves to a {why} address, which is not allowed{ALLOW_HINT}",
                    code="url_forbidden",
                )
    return ResolvedHost(host, port, addresses[0])
