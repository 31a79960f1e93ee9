"""The address rule (§7.1), host profiles (§7.2) and media retries."""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import TYPE_CHECKING

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro

from mediapipe.exceptions import MediaError
from mediapipe.safety import AddressPolicy, is_public, parse_address
from tests import media
from tests.mockserver import redirect

if TYPE_CHECKING:
    from pathlib import Path

    from spiders.site_server import Route, SiteHandler
    from tests.conftest import Crawl
    from tests.mockserver import MockServer


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.216.34", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),
        ("2002:7f00:1::1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("::1", "::1"), ("example.com", None)],
)
def test_literal_addresses(host: str, expected: str | None) -> None:
    address = parse_address(host)
    assert (str(address) if address else None) == expected


async def check(policy: AddressPolicy, host: str) -> str | None:
    try:
        await deferred_from_coro(policy.check_host(host, 80))
    except MediaError as failure:
        return failure.reason
    return None


@pytest_twisted.ensureDeferred
async def test_policy_checks_literal_and_resolved_addresses() -> None:
    policy = AddressPolicy(allow_private=False, allowed_hosts=["Allowed.Test"])
    assert await check(policy, "127.0.0.1") == "unsafe-url"
    assert await check(policy, "[::1]") == "unsafe-url"
    assert await check(policy, "localhost") == "unsafe-url"  # resolved, not by its name
    assert await check(policy, "no-such-host.invalid") == "dns"
    assert await check(policy, "8.8.8.8") is None
    assert await check(policy, "allowed.test") is None  # allowed hosts are not even resolved
    open_policy = AddressPolicy(allow_private=True, allowed_hosts=[])
    assert await check(open_policy, "127.0.0.1") is None


def test_policy_checks_the_connected_peer() -> None:
    policy = AddressPolicy(allow_private=False, allowed_hosts=["cdn.test"])
    with pytest.raises(MediaError, match="unsafe-url"):
        policy.check_peer("example.com", ipaddress.ip_address("10.0.0.1"))
    policy.check_peer("example.com", ipaddress.ip_address("8.8.8.8"))
    policy.check_peer("cdn.test", ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize(
    ("host", "peer", "reason"),
    [
        ("example.com", "8.8.8.8", None),
        ("example.com", "2001:4860:4860::8888", None),
        ("example.com", "127.0.0.1", "unsafe-url"),
        ("example.com", "fe80::1%eth0", "unsafe-url"),  # a scoped link-local address
        ("example.com", "::ffff:10.0.0.1", "unsafe-url"),
        ("example.com", None, "unsafe-url"),  # an address that cannot be read: fail closed
        ("example.com", "not an address", "unsafe-url"),
        ("cdn.test", "127.0.0.1", None),  # exempt by name
        ("cdn.test", None, None),
    ],
)
def test_policy_checks_a_new_connection(host: str, peer: str | None, reason: str | None) -> None:
    policy = AddressPolicy(allow_private=False, allowed_hosts=["cdn.test"])
    if reason is None:
        policy.check_connection(host, peer)
        return
    with pytest.raises(MediaError) as failure:
        policy.check_connection(host, peer)
    assert failure.value.reason == reason


RULE_ON = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False}


@pytest_twisted.ensureDeferred
async def test_private_addresses_are_refused_before_any_request(
    crawl: Crawl, server: MockServer
) -> None:
    sources = [f"{server.url}/img/png", f"http://localhost:{server.port}/img/gif"]
    result = await crawl([{"images": list(sources)}], RULE_ON)
    records = result.items[0]["media"]
    assert [(r["status"], r["reason"]) for r in records] == [("failed", "unsafe-url")] * 2
    assert result.items[0]["images"] == sources
    assert server.requested == []
    assert result.stat("mediapipe/failed/unsafe-url") == 2


@pytest_twisted.ensureDeferred
async def test_allowed_hosts_open_exactly_those_hosts(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/to-localhost"] = redirect(f"http://localhost:{server.port}/img/gif")
    result = await crawl(
        [{"images": [f"{server.url}/img/png", f"{server.url}/to-localhost"]}],
        {**RULE_ON, "MEDIAPIPE_ALLOWED_HOSTS": ["127.0.0.1"]},
    )
    png, hop = result.items[0]["media"]
    assert png["status"] == "downloaded"
    assert (hop["status"], hop["reason"]) == ("failed", "unsafe-url")
    assert server.count("/img/gif") == 0  # the redirect hop was refused before it was sent


# -- host profiles ----------------------------------------------------------------------------

PROFILE = {"headers": {"X-Api-Key": "secret"}, "cookies": {"sid": "abc"}}


def seen(server: MockServer, header: str) -> list[str | None]:
    return [headers.get(header) for headers in server.seen_headers]


@pytest_twisted.ensureDeferred
async def test_profile_credentials_go_to_their_host_only(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/to-localhost"] = redirect(f"http://localhost:{server.port}/echo")
    source = f"{server.url}/echo"
    other_host = f"http://localhost:{server.port}/img/png"
    result = await crawl(
        [
            {"images": [source]},
            {"images": [f"{server.url}/to-localhost"]},
            {"images": [other_host]},
        ],
        {"MEDIAPIPE_HOST_PROFILES": {"127.0.0.1": PROFILE}, "CONCURRENT_ITEMS": 1},
    )
    assert seen(server, "X-Api-Key") == ["secret", None]
    cookies = seen(server, "Cookie")
    assert cookies[0] is not None
    assert "sid=abc" in cookies[0]
    assert cookies[1] is None or "sid=abc" not in cookies[1]
    by_source = {item["media"][0]["source"]: item["media"][0] for item in result.items}
    assert by_source[source]["status"] == "downloaded"
    # Credentials went to these sources' host: no provenance in the feed.
    assert "?url=" not in by_source[source]["url"]
    assert "?url=" not in by_source[f"{server.url}/to-localhost"]["url"]
    assert "?url=" in by_source[other_host]["url"]


@pytest_twisted.ensureDeferred
async def test_profile_of_a_redirect_target_applies_at_that_hop(
    crawl: Crawl, server: MockServer
) -> None:
    server.httpd.routes["/to-localhost"] = redirect(f"http://localhost:{server.port}/echo")
    result = await crawl(
        [{"images": [f"{server.url}/to-localhost"]}],
        {"MEDIAPIPE_HOST_PROFILES": {"localhost": PROFILE}},
    )
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert seen(server, "X-Api-Key") == ["secret"]
    assert server.count("/to-localhost") == 1


@pytest.mark.parametrize(
    ("global_verify", "profile_verify", "status"),
    [(False, True, "failed"), (True, False, "downloaded"), (False, None, "downloaded")],
)
@pytest_twisted.ensureDeferred
async def test_profile_decides_tls_verification(
    crawl: Crawl,
    tmp_path: Path,
    global_verify: bool,
    profile_verify: bool | None,
    status: str,
) -> None:
    from tests.tls import PNG_PATH, TLSServer

    profiles = {} if profile_verify is None else {"127.0.0.1": {"verify_tls": profile_verify}}
    with TLSServer(tmp_path) as tls:
        record = (
            await crawl(
                [{"images": [tls.url + PNG_PATH]}],
                {
                    "DOWNLOAD_VERIFY_CERTIFICATES": global_verify,
                    "MEDIAPIPE_HOST_PROFILES": profiles,
                },
            )
        ).items[0]["media"][0]
    assert record["status"] == status
    if status == "failed":
        assert record["reason"] == "tls"


# -- retries ------------------------------------------------------------------------------------


def busy_then_png(failures: int, code: int, retry_after: str | None = None) -> Route:
    lock, calls = threading.Lock(), [0]

    def route(handler: SiteHandler) -> None:
        with lock:
            calls[0] += 1
            call = calls[0]
        if call <= failures:
            extra = {"Retry-After": retry_after} if retry_after else {}
            handler.send_body(code, b"busy", "text/plain", extra)
        else:
            handler.send_body(200, media.PNG, "image/png")

    return route


RETRIES = {"MEDIAPIPE_RETRY_TIMES": 2, "MEDIAPIPE_RETRY_BACKOFF": 0.01}


@pytest_twisted.ensureDeferred
async def test_retry_after_is_honoured(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.httpd.routes["/busy"] = busy_then_png(1, 429, retry_after="1")
    result = await crawl([{"images": [f"{server.url}/busy"]}], RETRIES)
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert server.count("/busy") == 2
    assert result.stat("mediapipe/retry/count") == 1
    assert result.stat("mediapipe/retry/reason/http-429") == 1
    retries = [r.getMessage() for r in caplog.records if "Media (retry" in r.getMessage()]
    assert retries == [f"Media (retry 1 in 1.00 s: http-429): {server.url}/busy"]


@pytest.mark.parametrize(
    ("path", "reason", "attempts"),
    [
        ("/status/404", "http-404", 1),
        ("/status/500", "http-500", 1),
        ("/truncated", "truncated", 3),
    ],
)
@pytest_twisted.ensureDeferred
async def test_what_is_retried(
    crawl: Crawl, server: MockServer, path: str, reason: str, attempts: int
) -> None:
    result = await crawl([{"images": [f"{server.url}{path}"]}], RETRIES)
    assert result.items[0]["media"][0]["reason"] == reason
    assert server.count(path) == attempts
    assert result.stat("mediapipe/retry/count") == attempts - 1
    assert result.stat("mediapipe/retry/max_reached") == (1 if attempts > 1 else 0)


@pytest_twisted.ensureDeferred
async def test_connection_errors_are_retried(crawl: Crawl) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await crawl([{"images": [f"http://127.0.0.1:{port}/a.png"]}], RETRIES)
    assert result.items[0]["media"][0]["reason"] == "connection"
    assert result.stat("mediapipe/retry/reason/connection") == 2
    assert result.stat("mediapipe/failed/connection") == 1


def test_retry_after_dates() -> None:
    from mediapipe.naming import retry_after_seconds

    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Wed, 01 Jan 2020 00:00:10 GMT", now=1577836800) == 10
    assert retry_after_seconds("garbage") == 0
    assert retry_after_seconds("Wed, 01 Jan 2020 00:00:00 GMT", now=1577836900) == 0
