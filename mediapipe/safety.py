"""The address rule (contract §7.1): media requests never reach private or special networks.

A host is checked on every hop (each redirect passes the middleware again), on the addresses
it resolves to, with the event loop's resolver, which runs in a thread and never blocks the
reactor; and once connected, by the download handlers, on the address the socket actually
reached, before a byte of the request is written (a host whose name resolves to something else
between the check and the connection gains nothing).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from mediapipe.exceptions import MediaError

if TYPE_CHECKING:
    from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Resolutions are cached briefly: a crawl asks about the same few hosts thousands of times.
_CACHE_SECONDS = 60.0
_CACHE_ENTRIES = 4096


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet; False for loopback, private, link-local,
    reserved, multicast, unspecified and shared addresses, IPv4-mapped IPv6 ones included."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _ipv4_compatible(address)
        if embedded is not None:
            address = embedded
    return address.is_global and not address.is_multicast


def _ipv4_compatible(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # The deprecated ::a.b.c.d form still reaches a.b.c.d on some stacks.
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_address(host: str) -> IPAddress | None:
    """The address a host name spells literally (``127.0.0.1``, ``::1``, ``[::1]``), if any."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class AddressPolicy:
    """Decides whether a media request may go to a host."""

    def __init__(self, allow_private: bool, allowed_hosts: Iterable[str]) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(host.lower().strip("[]") for host in allowed_hosts)
        self._resolved: OrderedDict[str, tuple[float, tuple[IPAddress, ...]]] = OrderedDict()

    def exempt(self, host: str) -> bool:
        return self.allow_private or host.lower().strip("[]") in self.allowed_hosts

    async def check_host(self, host: str, port: int) -> None:
        """Raise ``unsafe-url`` unless every address of ``host`` is public (``dns`` if none)."""
        if self.exempt(host):
            return
        literal = parse_address(host)
        addresses = (literal,) if literal is not None else await self._resolve(host, port)
        for address in addresses:
            if not is_public(address):
                raise MediaError("unsafe-url", f"{host} is {address}, not a public address")

    def check_peer(self, host: str, peer: IPAddress | None) -> None:
        """Raise ``unsafe-url`` when the connection reached a non-public address."""
        if peer is not None and not self.exempt(host) and not is_public(peer):
            raise MediaError("unsafe-url", f"{host} connected to {peer}, not a public address")

    def check_connection(self, host: str, peer: str | None) -> None:
        """Raise ``unsafe-url`` unless a new connection for ``host`` reached a public address.

        The download handlers call this once connected and before writing the request, so a
        name that resolved to a public address at :meth:`check_host` and to a private one at
        connect time gets nothing; cached lookups cannot help it either, since this is the
        address the socket reached. An address that cannot be read counts as not public.
        """
        if self.exempt(host):
            return
        address = parse_address(peer.partition("%")[0]) if peer else None
        if address is None:
            raise MediaError("unsafe-url", f"{host} connected to an unknown address ({peer})")
        self.check_peer(host, address)

    async def _resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        key = host.lower()
        cached = self._resolved.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise MediaError("dns", f"cannot resolve {host}: {exc}") from exc
        addresses = tuple(
            address
            for info in infos
            if (address := parse_address(str(info[4][0]).partition("%")[0])) is not None
        )
        if not addresses:
            raise MediaError("dns", f"{host} resolves to no address")
        self._resolved[key] = (time.monotonic() + _CACHE_SECONDS, addresses)
        if len(self._resolved) > _CACHE_ENTRIES:
            self._resolved.popitem(last=False)
        return addresses
