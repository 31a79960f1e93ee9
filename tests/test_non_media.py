"""A declared media type is trusted only where the bytes cannot be checked (contract §4.5): files
that are not media, served as audio, video or images, are refused whatever they claim, and a
declared type the sniffer knows must match the bytes. Real files made by the standard library
(and the Python interpreter itself, an executable) stand in for what hostile servers sent."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sqlite3
import struct
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_twisted

from mediapipe.sniff import judge_body
from mediapipe.transfer import refusal_for
from tests import media
from tests.mockserver import body
from tests.storecheck import leftovers, stored_files

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer


def sqlite_file(folder: Path) -> bytes:
    path = folder / "db.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("create table t (x)")
        db.execute("insert into t values (1)")
    db.close()
    return path.read_bytes()


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def tar_file() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


def sfnt(tag: bytes) -> bytes:
    # The offset table of a TrueType/OpenType font: version tag, 1 table, search fields.
    return tag + struct.pack(">HHHH", 1, 16, 0, 0) + b"head" + bytes(12) + bytes(200)


PDF = b"%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
NOT_MEDIA = {
    "pdf": PDF,
    "elf": Path(sys.executable).resolve().read_bytes()[:8192],
    "gzip": gzip.compress(bytes(range(256)) * 40),
    "bzip2": bz2.compress(bytes(range(256)) * 40),
    "xz": lzma.compress(bytes(range(256)) * 40),
    "zip": zip_file(),
    "tar": tar_file(),
    "ttf": sfnt(b"\x00\x01\x00\x00"),
    "otf": sfnt(b"OTTO"),
    "woff": b"wOFF" + b"\x00\x01\x00\x00" + bytes(400),
    "woff2": b"wOF2" + b"\x00\x01\x00\x00" + bytes(400),
}


@pytest.mark.parametrize("declared", ["audio/mpeg", "video/mp4", "image/png"])
@pytest.mark.parametrize("kind", [*NOT_MEDIA, "sqlite"])
@pytest_twisted.ensureDeferred
async def test_non_media_files_are_refused_whatever_they_declare(
    crawl: Crawl, server: MockServer, tmp_path: Path, kind: str, declared: str
) -> None:
    payload = NOT_MEDIA[kind] if kind != "sqlite" else sqlite_file(tmp_path)
    server.httpd.routes[f"/file/{kind}"] = body(payload, declared)
    source = f"{server.url}/file/{kind}"
    result = await crawl([{"images": [source, f"{server.url}/img/png"]}])
    refused, png = result.items[0]["media"]
    assert (refused["status"], refused["reason"]) == ("failed", "content-mismatch"), refused
    assert png["status"] == "downloaded"
    assert stored_files(crawl.store) == {png["path"]: media.PNG}
    assert leftovers(crawl.store) == []
    assert result.stat("mediapipe/failed/content-mismatch") == 1
    (warning,) = result.warnings
    assert warning.startswith(f"Media (failed: content-mismatch): {source} (the body is a ")
    assert warning.endswith(f" file, not media; declared {declared})")


def test_the_refusal_names_the_format() -> None:
    verdict = judge_body("audio/mpeg", PDF)
    refusal = refusal_for(verdict, ("audio/*",), PDF)
    assert refusal is not None
    assert (refusal.reason, refusal.detail) == (
        "content-mismatch",
        "the body is a pdf file, not media",
    )


@pytest.mark.parametrize("declared", ["audio/mpeg", "video/mp4", "audio/wav", "image/gif"])
@pytest_twisted.ensureDeferred
async def test_checkable_declared_type_must_match_the_bytes(
    crawl: Crawl, server: MockServer, declared: str
) -> None:
    server.httpd.routes["/noise"] = body(media.NOISE, declared)
    result = await crawl([{"images": [f"{server.url}/noise"]}])
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "unknown-format"), record
    assert stored_files(crawl.store) == {}


@pytest_twisted.ensureDeferred
async def test_declared_type_without_a_signature_is_kept(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/speex"] = body(media.NOISE, "audio/x-unheard-of")
    result = await crawl([{"images": [f"{server.url}/speex"]}])
    record = result.items[0]["media"][0]
    assert (record["status"], record["mime"]) == ("downloaded", "audio/x-unheard-of"), record
    assert stored_files(crawl.store) == {record["path"]: media.NOISE}
