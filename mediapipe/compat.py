"""Every private name of Scrapy, Twisted and aiohttp that mediapipe uses, in one place.

Scrapy offers no public way to stream a response body (see :mod:`mediapipe.handlers`), so the
streaming download handlers subclass private classes and read private attributes. Any Scrapy
release may rename them. Each is listed here and looked up without failing, so that
:mod:`mediapipe.handlers` always imports; :func:`streaming_supported` says whether the names a
handler needs are all there, and the handlers fall back to Scrapy's own behaviour when not.
``tests/test_compat.py`` checks every name, so a new release fails one clear test per name.

A name is written ``"module:Object.attribute"`` (looked up attribute by attribute), or
``"module:Class@attribute"`` for an attribute that instances get in the class's own code,
which only the code of the class (or of its bases) can show.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

import scrapy

TWISTED_NAMES: tuple[str, ...] = (
    "scrapy.core.downloader.contextfactory:_ScrapyClientContextFactory.from_crawler",
    "scrapy.core.downloader.contextfactory:_ScrapyClientContextFactory@_verify_certificates",
    "scrapy.core.downloader.handlers.http11:HTTP11DownloadHandler@_contextFactory",
    "scrapy.core.downloader.handlers.http11:HTTP11DownloadHandler@_bind_address",
    "scrapy.core.downloader.handlers.http11:HTTP11DownloadHandler@_pool",
    "scrapy.core.downloader.handlers.http11:HTTP11DownloadHandler@_crawler",
    "scrapy.core.downloader.handlers.http11:HTTP11DownloadHandler@_tls_verbose_logging",
    "scrapy.core.downloader.handlers.http11:HTTP11DownloadHandler@_disconnect_timeout",
    "scrapy.core.downloader.handlers.http11:_ScrapyAgent._cb_bodyready",
    "scrapy.core.downloader.handlers.http11:_ResponseReader",
    "scrapy.core.downloader.handlers.http11:_ResponseReader@_bodybuf",
    "scrapy.core.downloader.handlers.http11:_LenientHTTPClientParser",
    "scrapy.core.downloader.handlers.http11:_LenientHTTP11ClientProtocol",
    "scrapy.core.downloader.handlers.http11:_LenientHTTP11ClientFactory",
    "scrapy.utils._download_handlers:wrap_twisted_exceptions",
    "twisted.web._newclient:HTTP11ClientProtocol@_parser",
    "twisted.web._newclient:HTTPParser@connHeaders",
    "twisted.web.client:_HTTP11ClientFactory@_quiescentCallback",
    "twisted.web._newclient:Response._bodyProtocol",
    "twisted.web._newclient:Response@_transport",
    "twisted.web.client:HTTPConnectionPool._factory",
)

AIOHTTP_NAMES: tuple[str, ...] = (
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler._read_response",
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler._extract_headers",
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler._build_base_response_args",
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler._iter_body_chunks",
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler._is_dataloss_exception",
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler@_session",
    "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler@_bind_address",
    "scrapy.core.downloader.handlers._aiohttp:_ClientResponse",
    "scrapy.utils._download_handlers:check_stop_download",
    "scrapy.utils._download_handlers:make_response",
)

ALL_NAMES: tuple[str, ...] = TWISTED_NAMES + AIOHTTP_NAMES


class Missing:
    """Stands in for a class this Scrapy does not have, so that subclasses can still be
    defined; :func:`streaming_supported` keeps them from being used."""


_ABSENT = object()


def _lookup(name: str) -> Any:
    module_name, _, path = name.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        return _ABSENT
    for attribute in path.split("."):
        found = getattr(found, attribute, _ABSENT)
        if found is _ABSENT:
            break
    return found


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def find(name: str) -> Any:
    """The object ``"module:path"`` names, or None when it does not exist."""
    found = _lookup(name)
    return None if found is _ABSENT else found


def exists(name: str) -> bool:
    """True when this installation has ``name`` (either form of the module docstring)."""
    path, _, attribute = name.partition("@")
    found = _lookup(path)
    if found is _ABSENT:
        return False
    if not attribute:
        return True
    return inspect.isclass(found) and any(
        attribute in code.co_names for cls in found.__mro__ for code in _codes(cls)
    )


def _codes(cls: type) -> list[Any]:
    codes = []
    for value in vars(cls).values():
        function = getattr(value, "__func__", value)
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.append(code)
    return codes


def missing(reactor: bool = True) -> list[str]:
    """The names the streaming handler for this mode needs that this installation lacks; a
    missing module stands for all of its names."""
    lacking: list[str] = []
    for name in TWISTED_NAMES if reactor else AIOHTTP_NAMES:
        module = name.partition(":")[0]
        if module in lacking or exists(name):
            continue
        lacking.append(name if _importable(module) else module)
    return lacking


def streaming_supported(reactor: bool = True) -> tuple[bool, str]:
    """Whether the streaming handler of this mode (Twisted reactor or not) can run here; when
    not, the sentence to log once, naming what is missing and what the user gets instead."""
    lacking = missing(reactor)
    if not lacking:
        return True, ""
    return False, (
        f"mediapipe cannot stream media bodies with Scrapy {scrapy.__version__}, which lacks "
        f"{', '.join(lacking)}; Scrapy's own download handler is used instead: media bodies "
        "are held in memory until complete (up to MEDIAPIPE_MAX_SIZE), and a host that "
        "resolves to a private address only at connect time is refused after its answer "
        "instead of before the request"
    )


def _class(name: str) -> Any:
    found = find(name)
    return found if inspect.isclass(found) else type(name.rpartition(":")[2], (Missing,), {})


if TYPE_CHECKING:
    from scrapy.core.downloader.contextfactory import (
        _ScrapyClientContextFactory as ScrapyClientContextFactory,
    )
    from scrapy.core.downloader.handlers._aiohttp import (
        AiohttpDownloadHandler,
    )
    from scrapy.core.downloader.handlers._aiohttp import (
        _ClientResponse as AiohttpClientResponse,
    )
    from scrapy.core.downloader.handlers.http11 import (
        _LenientHTTP11ClientFactory as LenientHTTP11ClientFactory,
    )
    from scrapy.core.downloader.handlers.http11 import (
        _LenientHTTP11ClientProtocol as LenientHTTP11ClientProtocol,
    )
    from scrapy.core.downloader.handlers.http11 import (
        _LenientHTTPClientParser as LenientHTTPClientParser,
    )
    from scrapy.core.downloader.handlers.http11 import (
        _ResponseReader as ResponseReader,
    )
    from scrapy.core.downloader.handlers.http11 import (
        _ScrapyAgent as ScrapyAgent,
    )
    from scrapy.utils._download_handlers import (
        check_stop_download,
        make_response,
        wrap_twisted_exceptions,
    )
else:
    _HTTP11 = "scrapy.core.downloader.handlers.http11"
    _AIOHTTP = "scrapy.core.downloader.handlers._aiohttp"
    _UTILS = "scrapy.utils._download_handlers"
    ScrapyClientContextFactory = _class(
        "scrapy.core.downloader.contextfactory:_ScrapyClientContextFactory"
    )
    AiohttpDownloadHandler = _class(f"{_AIOHTTP}:AiohttpDownloadHandler")
    AiohttpClientResponse = _class(f"{_AIOHTTP}:_ClientResponse")
    LenientHTTP11ClientFactory = _class(f"{_HTTP11}:_LenientHTTP11ClientFactory")
    LenientHTTP11ClientProtocol = _class(f"{_HTTP11}:_LenientHTTP11ClientProtocol")
    LenientHTTPClientParser = _class(f"{_HTTP11}:_LenientHTTPClientParser")
    ResponseReader = _class(f"{_HTTP11}:_ResponseReader")
    ScrapyAgent = _class(f"{_HTTP11}:_ScrapyAgent")
    check_stop_download = find(f"{_UTILS}:check_stop_download")
    make_response = find(f"{_UTILS}:make_response")
    wrap_twisted_exceptions = find(f"{_UTILS}:wrap_twisted_exceptions")

__all__ = [
    "AIOHTTP_NAMES",
    "ALL_NAMES",
    "TWISTED_NAMES",
    "AiohttpClientResponse",
    "AiohttpDownloadHandler",
    "LenientHTTP11ClientFactory",
    "LenientHTTP11ClientProtocol",
    "LenientHTTPClientParser",
    "ResponseReader",
    "ScrapyAgent",
    "ScrapyClientContextFactory",
    "check_stop_download",
    "exists",
    "find",
    "make_response",
    "missing",
    "streaming_supported",
    "wrap_twisted_exceptions",
]
