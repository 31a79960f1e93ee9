"""Media connections: the address a media connection reached is checked before a single
request byte is written (contract §7.1), and answers are parsed so that both download handlers
refuse the same malformed ones.

On Twisted, direct media requests get a connection pool of their own, whose new connections
are checked as they connect, before the TLS handshake; on aiohttp, a connector resolves media
hosts to their public addresses only and checks every connection it hands to a media request.
"""

from __future__ import annotations

import socket
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from twisted.web.client import HTTPConnectionPool

from mediapipe import compat
from mediapipe.exceptions import MediaError
from mediapipe.safety import is_public, parse_address

if TYPE_CHECKING:
    from collections.abc import Hashable

    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IAddress, IProtocol, IStreamClientEndpoint

    from mediapipe.safety import AddressPolicy

# aiohttp's parser refuses a response with more header lines, or a longer one, than this (its
# defaults); the Twisted handler refuses the same responses, so that both give one answer.
MAX_HEADERS = 128
MAX_HEADER_LINE = 8190


class MediaParser(compat.LenientHTTPClientParser):
    """Scrapy's response parser, refusing while it parses what aiohttp's parser refuses."""

    MAX_LENGTH = MAX_HEADER_LINE
    _header_lines = 0

    def statusReceived(self, status: bytes) -> None:
        super().statusReceived(status)
        if not 100 <= self.response.code <= 999:
            raise MediaError("connection", f"malformed status line {status[:40]!r}")

    def headerReceived(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > MAX_HEADERS:
            raise MediaError("connection", f"more than {MAX_HEADERS} header lines")
        super().headerReceived(name, value)

    def allHeadersReceived(self) -> None:
        framing = self.connHeaders
        if framing.hasHeader(b"Transfer-Encoding") and framing.hasHeader(b"Content-Length"):
            # Two framings, one for each reader: the shape of request smuggling.
            raise MediaError("connection", "both Transfer-Encoding and Content-Length")
        super().allHeadersReceived()


class MediaClientProtocol(compat.LenientHTTP11ClientProtocol):
    def request(self, request: Any) -> Deferred[Any]:
        response: Deferred[Any] = super().request(request)
        # As Scrapy's protocol does: the parser is built by request(), whose class is fixed.
        self._parser.__class__ = MediaParser
        return response


class MediaClientFactory(compat.LenientHTTP11ClientFactory):
    def buildProtocol(self, addr: IAddress | None) -> Any:
        return MediaClientProtocol(self._quiescentCallback)


class _PeerCheckingFactory(Factory):
    """Builds the wrapped factory's protocol only for a connection to an allowed address.

    Refusing here, where the transport offers the peer's address, comes before the TLS
    handshake and the request: raising makes the endpoint close the socket and fail the
    connection attempt with the raised :class:`MediaError`.
    """

    def __init__(self, wrapped: Factory, policy: AddressPolicy, host: str) -> None:
        self._wrapped = wrapped
        self._policy = policy
        self._host = host
        self.refusal: MediaError | None = None

    def buildProtocol(self, addr: IAddress | None) -> Any:
        try:
            self._policy.check_connection(self._host, getattr(addr, "host", None))
        except MediaError as refusal:
            self.refusal = refusal
            raise
        return self._wrapped.buildProtocol(addr)

    def explain(self, failure: Failure) -> Failure:
        """The refusal, when one of the host's addresses was refused: Twisted reports only the
        failure of the last address it tried, which may be a refused connection elsewhere."""
        return failure if self.refusal is None else Failure(self.refusal)

    def doStart(self) -> None:
        self._wrapped.doStart()

    def doStop(self) -> None:
        self._wrapped.doStop()

    def logPrefix(self) -> str:
        return cast("str", self._wrapped.logPrefix())


class _PeerCheckingEndpoint:
    def __init__(self, endpoint: IStreamClientEndpoint, policy: AddressPolicy, host: str) -> None:
        self._endpoint: Any = endpoint
        self._policy = policy
        self._host = host

    def connect(self, factory: Factory) -> Deferred[IProtocol]:
        checking = _PeerCheckingFactory(factory, self._policy, self._host)
        connected: Deferred[IProtocol] = self._endpoint.connect(checking)
        return connected.addErrback(checking.explain)


class PeerCheckingPool(HTTPConnectionPool):
    """The pool of direct media connections: each new one is checked as it connects.

    Kept apart from the pool of page requests, so that no connection opened without the
    check is ever handed to a media request. Its keys are Twisted's ``(scheme, host, port,
    …)``, so a kept connection is reused only for the host it was checked for.
    """

    def __init__(self, reactor: Any, policy: AddressPolicy) -> None:
        super().__init__(reactor, persistent=True)
        self._policy = policy

    def getConnection(self, key: Hashable, endpoint: IStreamClientEndpoint) -> Deferred[Any]:
        host = cast("tuple[Any, ...]", key)[1]
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
        checked = _PeerCheckingEndpoint(endpoint, self._policy, name.lower())
        return super().getConnection(key, cast("IStreamClientEndpoint", checked))


# The host of the direct media request being downloaded in this task, for the connector.
MEDIA_HOST: ContextVar[str | None] = ContextVar("mediapipe_media_host", default=None)


class _CheckingResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the public addresses of a media request's host, so
    that the connector opens no connection (and starts no TLS handshake) to any other."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._resolver = aiohttp.DefaultResolver()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if MEDIA_HOST.get() != host.lower() or self._policy.exempt(host):
            return results
        public = [
            result
            for result in results
            if (address := parse_address(str(result["host"]).partition("%")[0])) is not None
            and is_public(address)
        ]
        if not public:
            found = ", ".join(str(result["host"]) for result in results)
            raise MediaError("unsafe-url", f"{host} resolves to {found}, not a public address")
        return public

    async def close(self) -> None:
        await self._resolver.close()


class PeerCheckingConnector(aiohttp.TCPConnector):
    """Resolves media hosts to their public addresses only, and checks the address of every
    connection handed to a media request, new or kept, before aiohttp writes the request on
    it (which covers literal addresses, never resolved). Lookups are not cached: a cached
    answer would be shared between page and media requests."""

    def __init__(self, address_policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(resolver=_CheckingResolver(address_policy), use_dns_cache=False, **kwargs)
        self._address_policy = address_policy

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        host = MEDIA_HOST.get()
        if host is None or req.proxy is not None or (req.url.host or "").lower() != host:
            return connection
        transport = connection.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        try:
            self._address_policy.check_connection(host, str(peer[0]) if peer else None)
        except MediaError:
            connection.close()
            raise
        return connection
