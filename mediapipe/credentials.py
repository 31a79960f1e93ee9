"""Per-host credentials (contract §7.2): a host profile's headers and cookies go to that host only.

Each hop of a media request (the first one and every redirect) passes here: whatever an
earlier hop added for another host is taken off again before the request leaves.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy import Request

    from mediapipe.settings import HostProfile
    from mediapipe.transfer import Transfer


def apply_host_profile(
    request: Request, host: str, transfer: Transfer, profiles: dict[str, HostProfile]
) -> None:
    """Give ``request`` the credentials of ``host`` and none of another host's."""
    if transfer.credential_headers and host != transfer.credential_host:
        for name in transfer.credential_headers:
            request.headers.pop(name, None)
    for added_for, name in transfer.profile_headers:
        if added_for != host:
            request.headers.pop(name, None)
    _drop_cookies(
        request, [name for added_for, name in transfer.profile_cookies if added_for != host]
    )
    transfer.profile_headers = [(h, n) for h, n in transfer.profile_headers if h == host]
    transfer.profile_cookies = [(h, n) for h, n in transfer.profile_cookies if h == host]
    profile = profiles.get(host)
    if profile is None or not profile.carries_credentials:
        return
    transfer.used_credentials = True
    for name, value in profile.headers.items():
        request.headers[name] = value
        transfer.profile_headers.append((host, name))
    if profile.cookies:
        jar = _cookies(request)
        for name, value in profile.cookies.items():
            jar[name] = value
            transfer.profile_cookies.append((host, name))
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
