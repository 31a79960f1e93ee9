"""Per-host credentials (contract §7.2): a host profile's headers and cookies go to that host only.

Each hop of a media request (the first one and every redirect) passes here: whatever an
earlier hop added for another host is taken off again before the request leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scrapy import Request

    from mediapipe.settings import HostProfile


@dataclass(slots=True)
class CredentialScope:
    """The credentials of one media request, hop by hop: who they belong to, what was added."""

    # The caller's own headers (copy_media's) belong to the first hop's host only.
    host: str | None = None
    headers: tuple[str, ...] = ()
    # What host profiles added, by host, so that a hop to another host takes it off again.
    profile_headers: list[tuple[str, str]] = field(default_factory=list)
    profile_cookies: list[tuple[str, str]] = field(default_factory=list)
    # Whether any hop carried a profile's credentials (then no provenance, contract §6).
    used: bool = False

    def restrict(self, host: str | None, headers: Iterable[str]) -> None:
        """Send ``headers`` to ``host`` only, never to a redirect target on another host."""
        self.host = host
        self.headers = tuple(headers)


def apply_host_profile(
    request: Request, host: str, scope: CredentialScope, profiles: dict[str, HostProfile]
) -> None:
    """Give ``request`` the credentials of ``host`` and none of another host's."""
    if scope.headers and host != scope.host:
        for name in scope.headers:
            request.headers.pop(name, None)
    for added_for, name in scope.profile_headers:
        if added_for != host:
            request.headers.pop(name, None)
    _drop_cookies(request, [name for added_for, name in scope.profile_cookies if added_for != host])
    scope.profile_headers = [(h, n) for h, n in scope.profile_headers if h == host]
    scope.profile_cookies = [(h, n) for h, n in scope.profile_cookies if h == host]
    profile = profiles.get(host)
    if profile is None or not profile.carries_credentials:
        return
    scope.used = True
    for name, value in profile.headers.items():
        request.headers[name] = value
        scope.profile_headers.append((host, name))
    if profile.cookies:
        jar = _cookies(request)
        for name, value in profile.cookies.items():
            jar[name] = value
            scope.profile_cookies.append((host, name))
        _set_cookies(request, jar)


def _cookies(request: Request) -> dict[str, str]:
    header = request.headers.get(b"Cookie")
    if not header:
        return {}
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header.decode("latin-1"))
    return {name: morsel.value for name, morsel in parsed.items()}


def _set_cookies(request: Request, jar: dict[str, str]) -> None:
    if jar:
        request.headers[b"Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
    else:
        request.headers.pop(b"Cookie", None)


def _drop_cookies(request: Request, names: list[str]) -> None:
    if names:
        jar = _cookies(request)
        for name in names:
            jar.pop(name, None)
        _set_cookies(request, jar)
