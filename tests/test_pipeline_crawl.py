"""Crawl-level tests of the contract, rule by rule (contract §2–§6, §8, §9), on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
import time
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import pytest
import pytest_twisted

from tests import media
from tests.mockserver import BIG_BODY, DATE_ONLY_EPOCH, LAST_MODIFIED_EPOCH
from tests.storecheck import index_entry, leftovers, set_index_field, stored_files

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

PNG_B64 = "data:image/png;base64," + __import__("base64").b64encode(media.PNG).decode()


def h16(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


async def one(crawl: Crawl, source: Any, **fields: Any) -> tuple[dict[str, Any], CrawlResult]:
    settings = fields.pop("settings", None)
    result = await crawl([{"images": [source], **fields}], settings)
    assert len(result.items) == 1
    return result.items[0]["media"][0], result


# -- §2 one result per input, in order --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_one_result_per_input_in_order(crawl: Crawl, server: MockServer) -> None:
    sources = [
        f"{server.url}/img/jpeg",
        None,
        "/static/local.png",
        f"{server.url}/status/404",
        PNG_B64,
        f"{server.url}/img/gif",
        "ftp://example.com/a.png",
    ]
    result = await crawl([{"images": list(sources)}])
    item = result.items[0]
    assert len(item["images"]) == len(sources)
    assert [r["source"] for r in item["media"]] == sources
    assert [r["status"] for r in item["media"]] == [
        "downloaded", "local", "local", "failed", "data", "downloaded", "failed",
    ]  # fmt: skip
    assert [r["url"] for r in item["media"]] == item["images"]
    assert item["images"][1] is None
    assert item["images"][2] == "/static/local.png"
    assert item["images"][3] == sources[3]
    assert item["images"][6] == sources[6]
    jpeg = item["media"][0]
    assert set(jpeg) >= {
        "source", "url", "path", "status", "reason", "mime", "size", "sha256", "width", "height",
    }  # fmt: skip
    assert (jpeg["mime"], jpeg["size"], jpeg["width"], jpeg["height"]) == (
        "image/jpeg",
        len(media.JPEG),
        10,
        7,
    )
    assert jpeg["sha256"] == hashlib.sha256(media.JPEG).hexdigest()
    assert (result.store / jpeg["path"]).read_bytes() == media.JPEG


@pytest_twisted.ensureDeferred
async def test_lone_string_counts_as_one_element_list(crawl: Crawl, server: MockServer) -> None:
    result = await crawl([{"images": f"{server.url}/img/png"}])
    item = result.items[0]
    assert isinstance(item["images"], list)
    assert len(item["images"]) == 1
    assert item["media"][0]["status"] == "downloaded"


@pytest_twisted.ensureDeferred
async def test_results_field_can_be_renamed_or_turned_off(crawl: Crawl, server: MockServer) -> None:
    renamed = await crawl(
        [{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_RESULTS_FIELD": "files"}
    )
    assert "media" not in renamed.items[0]
    assert renamed.items[0]["files"][0]["status"] == "downloaded"
    off = await crawl([{"images": [f"{server.url}/img/gif"]}], {"MEDIAPIPE_RESULTS_FIELD": None})
    assert set(off.items[0]) == {"images"}
    assert off.items[0]["images"][0].startswith("/media/")


@pytest_twisted.ensureDeferred
async def test_field_names_come_from_settings(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    settings = {
        "MEDIAPIPE_URLS_FIELD": "pictures",
        "MEDIAPIPE_TAGS_FIELD": "keywords",
        "MEDIAPIPE_ALT_FIELD": "caption",
    }
    result = await crawl(
        [{"pictures": [source], "keywords": ["k"], "caption": "c", "images": ["untouched"]}],
        settings,
    )
    item = result.items[0]
    assert item["images"] == ["untouched"]
    assert item["media"][0]["path"] == f"{LAST_MODIFIED_EPOCH}_k+c_{h16(source)}.png"


# -- §3 which sources are fetched -----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_local_paths_and_none_make_no_request(crawl: Crawl, server: MockServer) -> None:
    result = await crawl([{"images": ["/img/png", None, "/media/already.png?x=1"]}])
    assert result.items[0]["images"] == ["/img/png", None, "/media/already.png?x=1"]
    assert server.requested == []
    assert result.stat("downloader/request_count") == 1  # the spider's own data: request
    assert stored_files(result.store) == {}


@pytest.mark.parametrize(
    "source",
    [
        PNG_B64,
        "DATA:image/png;base64," + PNG_B64.split(",", 1)[1],
        "data:image/png," + quote(media.PNG, safe=""),
    ],
    ids=["base64", "upper-case-scheme", "percent-encoded"],
)
@pytest_twisted.ensureDeferred
async def test_data_uris_are_decoded_and_stored(crawl: Crawl, source: str) -> None:
    before = int(time.time())
    record, result = await one(crawl, source, tags=["px"])
    assert record["status"] == "data"
    assert record["mime"] == "image/png"
    assert (result.store / record["path"]).read_bytes() == media.PNG
    epoch = int(record["path"].split("_", 1)[0])
    assert before <= epoch <= int(time.time())
    assert record["path"] == f"{epoch}_px_{h16(source)}.png"
    assert record["url"] == "/media/" + quote(record["path"], safe="-._~+/")  # no provenance


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("data:text/html;base64,PGh0bWw+PC9odG1sPg==", "content-type"),
        ("data:image/png;base64,@@@not-base64", "bad-data-uri"),
        ("data:image/png", "bad-data-uri"),
        (
            "data:image/png;base64," + __import__("base64").b64encode(media.HTML).decode(),
            "content-mismatch",
        ),
        ("data:application/octet-stream;base64,AAAAAAAA", "unknown-format"),
        ("data:image/png;base64,", "empty"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_data_uris_fail_with_reason(crawl: Crawl, source: str, reason: str) -> None:
    record, result = await one(crawl, source)
    assert (record["status"], record["reason"], record["url"]) == ("failed", reason, source)
    assert stored_files(result.store) == {}
    assert result.stat(f"mediapipe/failed/{reason}") == 1


@pytest.mark.parametrize(
    "source",
    [
        "img/relative.png",
        "ftp://127.0.0.1/a.png",
        "javascript:alert(1)",
        "garbage ::",
        "",
        42,
        "file:///etc/passwd",
        "http://",
    ],
)
@pytest_twisted.ensureDeferred
async def test_unsupported_sources_fail(crawl: Crawl, source: Any) -> None:
    record, result = await one(crawl, source)
    assert (record["status"], record["reason"]) == ("failed", "unsupported-url")
    assert record["url"] == source
    assert result.items[0]["images"] == [source]
    assert result.stat("mediapipe/failed/unsupported-url") == 1
    assert len(result.warnings) == 1


@pytest_twisted.ensureDeferred
async def test_downloads_go_through_scrapy_downloader(crawl: Crawl, server: MockServer) -> None:
    settings = {"USER_AGENT": "mediapipe-test-agent", "DEFAULT_REQUEST_HEADERS": {"X-Site": "1"}}
    record, result = await one(crawl, f"{server.url}/echo", settings=settings)
    assert record["status"] == "downloaded"
    assert server.seen_headers[0]["User-Agent"] == "mediapipe-test-agent"
    assert server.seen_headers[0]["X-Site"] == "1"
    assert server.seen_headers[0]["Accept-Encoding"] == "identity"
    assert result.stat("downloader/request_count") == 2
    assert result.stat("downloader/response_status_count/200") >= 1


@pytest_twisted.ensureDeferred
async def test_media_requests_are_allowed_off_site(crawl: Crawl, server: MockServer) -> None:
    from tests.conftest import ItemsSpider

    class CdnSpider(ItemsSpider):
        allowed_domains: ClassVar[list[str]] = ["example.com"]

    result = await crawl([{"images": [f"{server.url}/img/png"]}], spider=CdnSpider)
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert result.stat("offsite/filtered") == 0


@pytest_twisted.ensureDeferred
async def test_same_source_is_fetched_once_per_crawl(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    items = [
        {"images": [source, source], "alt": "first"},
        {"images": [source], "alt": "second"},
        {"images": [f"{server.url}/status/404"]},
        {"images": [f"{server.url}/status/404"]},
    ]
    result = await crawl(items, {"CONCURRENT_ITEMS": 4})
    assert server.count("/img/png") == 1
    assert server.count("/status/404") == 1
    with_png = [item for item in result.items if item["media"][0]["source"] == source]
    urls = {url for item in with_png for url in item["images"]}
    assert len(with_png) == 2
    assert len(urls) == 1
    assert len(stored_files(result.store)) == 1
    reasons = [item["media"][0]["reason"] for item in result.items if item not in with_png]
    assert reasons == ["http-404", "http-404"]
    assert result.stat("mediapipe/failed/http-404") == 2
    assert len(result.warnings) == 1  # one line per failing source, however many items hold it


# -- §4 what is accepted --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/redirect/png", "/redirect/twice"])
@pytest_twisted.ensureDeferred
async def test_redirects_are_followed(crawl: Crawl, server: MockServer, path: str) -> None:
    source = f"{server.url}{path}"
    record, result = await one(crawl, source)
    assert record["status"] == "downloaded"
    assert (result.store / record["path"]).read_bytes() == media.PNG
    assert record["path"].endswith(f"_{h16(source)}.png")
    assert server.count("/img/png") == 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/status/404", "http-404"),
        ("/status/500", "http-500"),
        ("/status/403-image", "http-403"),
        ("/status/206", "http-206"),
        ("/redirect/to-404", "http-404"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_non_2xx_status_fails(
    crawl: Crawl, server: MockServer, path: str, reason: str
) -> None:
    source = f"{server.url}{path}"
    record, result = await one(crawl, source)
    assert (record["status"], record["reason"], record["url"]) == ("failed", reason, source)
    assert stored_files(result.store) == {}
    assert leftovers(result.store) == []


@pytest_twisted.ensureDeferred
async def test_any_2xx_is_accepted(crawl: Crawl, server: MockServer) -> None:
    record, _ = await one(crawl, f"{server.url}/status/201")
    assert record["status"] == "downloaded"


@pytest.mark.parametrize(
    ("path", "mime", "ext"),
    [
        ("/img/png-charset", "image/png", ".png"),
        ("/img/svg", "image/svg+xml", ".svg"),
        ("/img/octet-png", "image/png", ".png"),
        ("/img/binary-octet-jpeg", "image/jpeg", ".jpg"),
        ("/img/no-type-gif", "image/gif", ".gif"),
        ("/img/octet-mp4", "video/mp4", ".mp4"),
        ("/img/webp", "image/webp", ".webp"),
        ("/audio/wav", "audio/wav", ".wav"),
        ("/video/mp4", "video/mp4", ".mp4"),
        ("/img/jpeg-as-png", "image/jpeg", ".jpg"),
        ("/img/PNG-upper.PNG", "image/png", ".png"),
        ("/img/notes.txt", "image/png", ".png"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_accepted_types(
    crawl: Crawl, server: MockServer, path: str, mime: str, ext: str
) -> None:
    record, result = await one(crawl, f"{server.url}{path}")
    assert (record["status"], record["mime"]) == ("downloaded", mime)
    assert record["path"].endswith(ext)
    assert (result.store / record["path"]).stat().st_size == record["size"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/img/page", "content-type"),
        ("/img/json", "content-type"),
        ("/img/html-as-png", "content-mismatch"),
        ("/img/json-as-png", "content-mismatch"),
        ("/img/octet-noise", "unknown-format"),
        ("/img/noise-as-png", "unknown-format"),
        ("/img/empty", "empty"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_refused_bodies(crawl: Crawl, server: MockServer, path: str, reason: str) -> None:
    record, result = await one(crawl, f"{server.url}{path}")
    assert (record["status"], record["reason"]) == ("failed", reason)
    assert stored_files(result.store) == {}
    assert leftovers(result.store) == []
    assert result.warnings == [
        f"Media (failed: {reason}): {server.url}{path} ({record_detail(result, reason)})"
    ]


def record_detail(result: CrawlResult, reason: str) -> str:
    line = result.warnings[0]
    return line.rsplit("(", 1)[1].rstrip(")")


@pytest_twisted.ensureDeferred
async def test_media_types_setting_narrows_what_is_accepted(
    crawl: Crawl, server: MockServer
) -> None:
    result = await crawl(
        [{"images": [f"{server.url}/img/png", f"{server.url}/img/gif"]}],
        {"MEDIAPIPE_MEDIA_TYPES": ["image/png"]},
    )
    assert [r["reason"] for r in result.items[0]["media"]] == [None, "content-type"]


@pytest_twisted.ensureDeferred
async def test_declared_audio_video_with_unknown_bytes(crawl: Crawl, server: MockServer) -> None:
    result = await crawl(
        [
            {
                "images": [
                    f"{server.url}/audio/unknown-bytes",
                    f"{server.url}/video/mp4-unknown-bytes.mp4",
                ]
            }
        ]
    )
    audio, video = result.items[0]["media"]
    # A type the sniffer has no signature for cannot be checked: kept, named from it.
    assert (audio["status"], audio["mime"]) == ("downloaded", "audio/x-unheard-of")
    assert audio["path"] == f"{LAST_MODIFIED_EPOCH}_{h16(audio['source'])}"
    assert (result.store / audio["path"]).read_bytes() == media.NOISE
    # MP4 can be checked, and these bytes are no MP4 (contract §4.5).
    assert (video["status"], video["reason"]) == ("failed", "unknown-format")


@pytest_twisted.ensureDeferred
async def test_refused_content_type_body_is_never_downloaded(
    crawl: Crawl, server: MockServer
) -> None:
    record, _ = await one(crawl, f"{server.url}/refused/html-body")
    assert record["reason"] == "content-type"
    # 200 chunks of 8 KiB were on offer; the client hung up right after the headers.
    assert server.chunks_sent("/refused/html-body") < 20


@pytest.mark.parametrize("path", ["/big/declared", "/big/chunked"])
@pytest_twisted.ensureDeferred
async def test_bodies_over_the_size_limit_are_refused(
    crawl: Crawl, server: MockServer, path: str
) -> None:
    limit = BIG_BODY // 4
    record, result = await one(crawl, f"{server.url}{path}", settings={"MEDIAPIPE_MAX_SIZE": limit})
    assert (record["status"], record["reason"]) == ("failed", "too-large")
    assert stored_files(result.store) == {}
    assert leftovers(result.store) == []
    if path == "/big/declared":
        assert server.chunks_sent(path) < 4  # refused at the headers


@pytest_twisted.ensureDeferred
async def test_max_size_defaults_to_download_maxsize(crawl: Crawl, server: MockServer) -> None:
    record, _ = await one(crawl, f"{server.url}/big/declared", settings={"DOWNLOAD_MAXSIZE": 1000})
    assert record["reason"] == "too-large"


@pytest_twisted.ensureDeferred
async def test_gzip_encoded_body_is_stored_decoded(crawl: Crawl, server: MockServer) -> None:
    record, result = await one(crawl, f"{server.url}/img/gzip")
    assert record["status"] == "downloaded"
    assert (result.store / record["path"]).read_bytes() == media.PNG
    assert record["sha256"] == hashlib.sha256(media.PNG).hexdigest()


# -- §5 the file name -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_spec_example_name(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    record, result = await one(
        crawl, source, tags=["flux", None, "1:1"], alt="A red square: ÄÖÜ 猫 / test?"
    )
    expected = f"1577836800_flux+1_1+A_red_square_ÄÖÜ_猫_test_{h16(source)}.png"
    assert record["path"] == expected
    assert (result.store / expected).read_bytes() == media.PNG


@pytest.mark.parametrize(
    ("path", "epoch"),
    [
        ("/img/last-modified", LAST_MODIFIED_EPOCH),
        ("/img/date-only", DATE_ONLY_EPOCH),
        ("/img/rfc850", DATE_ONLY_EPOCH),
        ("/img/asctime", DATE_ONLY_EPOCH),
    ],
)
@pytest_twisted.ensureDeferred
async def test_epoch_from_last_modified_or_date(
    crawl: Crawl, server: MockServer, path: str, epoch: int
) -> None:
    source = f"{server.url}{path}"
    record, _ = await one(crawl, source)
    assert record["path"] == f"{epoch}_{h16(source)}.png"


@pytest_twisted.ensureDeferred
async def test_per_image_alt_and_non_str_tags(crawl: Crawl, server: MockServer) -> None:
    first, second = f"{server.url}/img/png", f"{server.url}/img/gif"
    result = await crawl(
        [{"images": [first, second], "tags": [7, "", None, "ok"], "alt": ["Élan", None]}]
    )
    paths = [r["path"] for r in result.items[0]["media"]]
    assert paths == [
        f"{LAST_MODIFIED_EPOCH}_7+ok+Élan_{h16(first)}.png",
        f"{LAST_MODIFIED_EPOCH}_7+ok_{h16(second)}.gif",
    ]


@pytest_twisted.ensureDeferred
async def test_long_alt_is_cut_to_the_byte_limit(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    record, result = await one(
        crawl, source, alt="猫" * 1000, settings={"MEDIAPIPE_MAX_NAME_BYTES": 120}
    )
    name = record["path"]
    assert len(name.encode()) <= 120
    assert name.startswith(f"{LAST_MODIFIED_EPOCH}_猫")
    assert name.endswith(f"_{h16(source)}.png")
    assert (result.store / name).is_file()


# -- §6 the returned URL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("add_url", "suffix"),
    [(True, "?url={quoted}"), ("from=crawl&v=2", "?from=crawl&v=2"), (False, "")],
)
@pytest_twisted.ensureDeferred
async def test_returned_url(crawl: Crawl, server: MockServer, add_url: Any, suffix: str) -> None:
    source = f"{server.url}/img/last-modified"
    settings = {"MEDIAPIPE_ADD_URL": add_url, "MEDIAPIPE_URL_PREFIX": "/files/"}
    record, result = await one(crawl, source, tags=["été"], alt="a b", settings=settings)
    name = f"{LAST_MODIFIED_EPOCH}_été+a_b_{h16(source)}.png"
    expected = "/files/" + quote(name, safe="+") + suffix.format(quoted=quote(source, safe=""))
    assert record["url"] == expected
    assert result.items[0]["images"] == [expected]


# -- §8 reuse -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_second_crawl_reuses_without_requests(crawl: Crawl, server: MockServer) -> None:
    sources = [f"{server.url}/img/png", f"{server.url}/img/jpeg", PNG_B64]
    first = await crawl([{"images": list(sources)}])
    server.requested.clear()
    second = await crawl([{"images": list(sources), "alt": "another alt"}])
    assert server.requested == []
    assert [r["status"] for r in second.items[0]["media"]] == ["uptodate", "uptodate", "data"]
    assert second.items[0]["images"] == first.items[0]["images"]
    assert second.items[0]["media"][1]["sha256"] == hashlib.sha256(media.JPEG).hexdigest()
    assert len(stored_files(second.store)) == 3


@pytest_twisted.ensureDeferred
async def test_expired_or_missing_files_are_fetched_again(crawl: Crawl, server: MockServer) -> None:
    png, jpeg = f"{server.url}/img/png", f"{server.url}/img/jpeg"
    first = await crawl([{"images": [png, jpeg]}])
    record = index_entry(first.store, h16(png))
    assert record is not None
    set_index_field(first.store, h16(png), "stored_at", record["stored_at"] - 91 * 86400)
    (first.store / first.items[0]["media"][1]["path"]).unlink()
    server.requested.clear()
    second = await crawl([{"images": [png, jpeg]}])
    assert [r["status"] for r in second.items[0]["media"]] == ["downloaded", "downloaded"]
    assert server.requested == ["/img/png", "/img/jpeg"] or sorted(server.requested) == sorted(
        ["/img/png", "/img/jpeg"]
    )
    server.requested.clear()
    third = await crawl([{"images": [png]}], {"MEDIAPIPE_EXPIRES": 0})
    assert third.items[0]["media"][0]["status"] == "downloaded"
    assert server.requested == ["/img/png"]


@pytest_twisted.ensureDeferred
async def test_failed_redownload_keeps_the_good_copy(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    first = await crawl([{"images": [source]}])
    good = first.store / first.items[0]["media"][0]["path"]
    server.httpd.routes["/img/png"] = server.httpd.routes["/img/html-as-png"]
    second = await crawl([{"images": [source]}], {"MEDIAPIPE_EXPIRES": 0})
    assert second.items[0]["media"][0]["reason"] == "content-mismatch"
    assert good.read_bytes() == media.PNG


# -- §9 failure -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_download_errors_have_reasons(crawl: Crawl, server: MockServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sources = {
        f"{server.url}/truncated": "truncated",
        f"{server.url}/slow": "timeout",
        f"http://127.0.0.1:{closed_port}/a.png": "connection",
        "http://no-such-host.invalid/a.png": "dns",
    }
    good = f"{server.url}/img/png"
    result = await crawl([{"images": [*sources, good]}], {"DOWNLOAD_TIMEOUT": 1})
    records = result.items[0]["media"]
    assert {r["source"]: r["reason"] for r in records[:-1]} == sources
    assert records[-1]["status"] == "downloaded"
    assert result.items[0]["images"][:-1] == list(sources)
    assert set(stored_files(result.store)) == {records[-1]["path"]}
    assert leftovers(result.store) == []
    for source, reason in sources.items():
        assert result.stat(f"mediapipe/failed/{reason}") == 1
        assert sum(f"(failed: {reason}): {source} " in line for line in result.warnings) == 1
    assert len(result.warnings) == len(sources)


@pytest_twisted.ensureDeferred
async def test_retries_apply_to_media(crawl: Crawl, server: MockServer) -> None:
    record, result = await one(
        crawl,
        f"{server.url}/flaky/503-once",
        settings={"MEDIAPIPE_RETRY_TIMES": 2, "MEDIAPIPE_RETRY_BACKOFF": 0.01},
    )
    assert record["status"] == "downloaded"
    assert server.count("/flaky/503-once") == 2
    assert result.stat("mediapipe/retry/count") == 1
    assert result.stat("mediapipe/retry/reason/http-503") == 1
    assert result.stat("retry/count") == 0  # Scrapy's own retry leaves media requests alone
    assert leftovers(result.store) == []


@pytest_twisted.ensureDeferred
async def test_summary_line_and_stats(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    result = await crawl(
        [{"images": [f"{server.url}/img/png", f"{server.url}/status/404", PNG_B64, "/x"]}]
    )
    assert result.stat("mediapipe/sources") == 4
    assert result.stat("mediapipe/items") == 1
    assert result.stat("mediapipe/status/downloaded") == 1
    assert result.stat("mediapipe/status/data") == 1
    assert result.stat("mediapipe/status/local") == 1
    assert result.stat("mediapipe/status/failed") == 1
    assert result.stat("mediapipe/failed/http-404") == 1
    # The data: URI holds the downloaded PNG's bytes: stored once.
    assert result.stat("mediapipe/stored_bytes") == len(media.PNG)
    assert result.stat("mediapipe/stored_files") == 1
    assert result.stat("mediapipe/deduplicated") == 1
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mediapipe:")]
    assert summary == [
        "mediapipe: 1 distinct sources were root-relative paths (such as '/x'), kept as "
        "local paths and not downloaded; if they are URLs of the crawled site, join them to "
        "their page in the spider: response.urljoin(src)",
        "mediapipe: 4 sources in 1 items: 1 downloaded, 1 from data URIs, 0 reused, 1 local, "
        f"1 failed (http-404: 1); 1 files, {len(media.PNG)} bytes written, 1 deduplicated",
    ]
    # The summary is the crawl log's last line.
    assert caplog.records[-1].getMessage() == summary[-1]


@pytest_twisted.ensureDeferred
async def test_protocol_relative_sources_are_fetched_over_https(
    crawl: Crawl, tmp_path: Path
) -> None:
    from tests.tls import PNG_PATH, TLSServer

    with TLSServer(tmp_path) as tls:
        source = tls.url.removeprefix("https:") + PNG_PATH
        assert source.startswith("//127.0.0.1:")
        record, result = await one(crawl, source)
    assert record["status"] == "downloaded"
    assert tls.count(PNG_PATH) == 1
    assert (result.store / record["path"]).read_bytes() == media.PNG
    assert record["path"].endswith(f"_{h16(source)}.png")
    assert record["url"].endswith("?url=" + quote(source, safe=""))


@pytest_twisted.ensureDeferred
async def test_bounded_cache_falls_back_to_the_store(crawl: Crawl, server: MockServer) -> None:
    png, gif, missing = (f"{server.url}{p}" for p in ("/img/png", "/img/gif", "/status/404"))
    items = [{"images": [png, missing]}, {"images": [gif]}, {"images": [png, missing]}]
    result = await crawl(items, {"MEDIAPIPE_CACHE_SIZE": 1, "CONCURRENT_ITEMS": 1})
    first, _, third = (item["media"] for item in result.items)
    assert [r["status"] for r in first] == ["downloaded", "failed"]
    # Forgotten by the one-entry cache: the stored file is found in the store, the failed
    # source is tried again.
    assert [r["status"] for r in third] == ["uptodate", "failed"]
    assert third[0]["url"] == first[0]["url"]
    assert server.count("/img/png") == 1
    assert server.count("/status/404") == 2
