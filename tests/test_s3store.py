"""The S3-compatible store against a real server (SeaweedFS on 127.0.0.1): objects with their
exact bytes and Content-Type, the reuse index in the bucket, and start errors naming the setting."""

from __future__ import annotations

import base64
import json
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from scrapy.settings import Settings

from mediapipe.settings import MediaConfig, SettingError
from mediapipe.store import FilesystemStore, StorageError
from mediapipe.store.registry import join_store, store_scheme
from mediapipe.store.s3 import S3Store
from tests import media
from tests.mockserver import body
from tests.s3server import BUCKET, free_ports
from tests.scripts import run_python
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer
    from tests.s3server import S3Server

INDEX = ".mediapipe/index/"
CONTENT = ".mediapipe/content/"


@dataclass
class Place:
    """One test's own prefix in the session's bucket, and its local temporary folder."""

    server: S3Server
    prefix: str
    temp_dir: Path

    @property
    def uri(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            **self.server.settings(),
            "MEDIAPIPE_STORE": self.uri,
            "MEDIAPIPE_TEMP_DIR": str(self.temp_dir),
            **(extra or {}),
        }

    def names(self) -> list[str]:
        """Every object key under the prefix, relative to it."""
        listing = self.server.client().list_objects_v2(Bucket=BUCKET, Prefix=self.prefix)
        return sorted(entry["Key"][len(self.prefix) :] for entry in listing.get("Contents", []))

    def get(self, name: str) -> tuple[bytes, str]:
        response = self.server.client().get_object(Bucket=BUCKET, Key=self.prefix + name)
        return response["Body"].read(), response["ContentType"]

    def leftovers(self) -> list[Path]:
        tmp = self.temp_dir / ".mediapipe" / "tmp"
        return list(tmp.iterdir()) if tmp.exists() else []


@pytest.fixture
def place(s3_server: S3Server, tmp_path: Path) -> Place:
    return Place(s3_server, f"run-{uuid.uuid4().hex[:12]}/media/", tmp_path / "temp")


def record_of(item: dict[str, Any]) -> dict[str, Any]:
    return dict(item["media"][0])


# -- choosing the store ----------------------------------------------------------------------


def test_an_s3_uri_stays_a_string_and_thumbnails_go_below_its_prefix() -> None:
    config = MediaConfig.from_settings(Settings({"MEDIAPIPE_STORE": "s3://bucket/a/b/"}))
    assert config.store == "s3://bucket/a/b/"
    assert MediaConfig.from_settings(Settings({"MEDIAPIPE_STORE": "media"})).store == Path("media")
    assert join_store("s3://bucket/a/b/", "thumbnails") == "s3://bucket/a/b/thumbnails/"
    assert join_store("s3://bucket", "thumbnails") == "s3://bucket/thumbnails/"
    assert join_store("media", "thumbnails") == str(Path("media") / "thumbnails")
    assert store_scheme(r"C:\media") is None
    assert store_scheme("media/s3:/x") is None


@pytest_twisted.ensureDeferred
async def test_an_unknown_scheme_fails_at_start(crawl: Crawl, server: MockServer) -> None:
    with pytest.raises(SettingError, match=r"MEDIAPIPE_STORE = 'gs://b/p/'.*no store for gs://"):
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": "gs://b/p/"})
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_a_temp_dir_that_is_not_a_path_fails_at_start(
    crawl: Crawl, server: MockServer, place: Place
) -> None:
    with pytest.raises(SettingError, match="MEDIAPIPE_TEMP_DIR must be a folder path, got 3"):
        await crawl(
            [{"images": [f"{server.url}/img/png"]}], place.settings({"MEDIAPIPE_TEMP_DIR": 3})
        )
    assert server.requested == []


class FolderScheme:
    """A store class added by MEDIAPIPE_STORE_SCHEMES: the local store, in a folder named by a
    setting of its own."""

    @classmethod
    def from_config(cls, config: MediaConfig, settings: Settings) -> FilesystemStore:
        return FilesystemStore(Path(settings["TEST_FOLDER_STORE"]))


@pytest_twisted.ensureDeferred
async def test_a_scheme_added_by_setting_chooses_its_store(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    folder = tmp_path / "by-scheme"
    settings = {
        "MEDIAPIPE_STORE": "folder://anything",
        "MEDIAPIPE_STORE_SCHEMES": {"folder": f"{__name__}.FolderScheme"},
        "TEST_FOLDER_STORE": str(folder),
    }
    result = await crawl([{"images": [f"{server.url}/img/png"]}], settings)
    record = record_of(result.items[0])
    assert record["status"] == "downloaded"
    assert stored_files(folder) == {record["path"]: media.PNG}


@pytest_twisted.ensureDeferred
async def test_a_store_class_that_cannot_be_loaded_fails_at_start(
    crawl: Crawl, server: MockServer
) -> None:
    settings = {
        "MEDIAPIPE_STORE": "folder://anything",
        "MEDIAPIPE_STORE_SCHEMES": {"folder": "tests.no_such_module.Store"},
    }
    with pytest.raises(SettingError, match="MEDIAPIPE_STORE_SCHEMES: cannot load the store"):
        await crawl([{"images": [f"{server.url}/img/png"]}], settings)
    assert server.requested == []


@pytest.mark.parametrize("name", ["../up.png", "a//b.png", ".mediapipe/index/x.json", "./a.png"])
def test_a_name_that_would_leave_the_prefix_is_refused(name: str, tmp_path: Path) -> None:
    store = S3Store("s3://bucket/p/", temp_dir=tmp_path, client_options={})
    assert store.object_key("sub/a.png") == "p/sub/a.png"
    with pytest.raises(StorageError, match="would leave the media store"):
        store.object_key(name)


@pytest_twisted.ensureDeferred
async def test_a_temp_dir_that_cannot_be_created_fails_at_start(
    crawl: Crawl, server: MockServer, place: Place, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a folder")
    settings = place.settings({"MEDIAPIPE_TEMP_DIR": str(blocker / "temp")})
    with pytest.raises(SettingError, match="MEDIAPIPE_STORE") as failure:
        await crawl([{"images": [f"{server.url}/img/png"]}], settings)
    assert f"MEDIAPIPE_TEMP_DIR: cannot create or write {blocker / 'temp'}" in str(failure.value)
    assert server.requested == []
    assert blocker.read_bytes() == b"not a folder"


# -- crawls ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_downloads_become_objects_with_their_bytes_and_type_and_are_reused(
    crawl: Crawl, server: MockServer, place: Place
) -> None:
    sources = [f"{server.url}/img/png", f"{server.url}/img/octet-mp4"]
    first = await crawl([{"images": sources}], place.settings())

    png, mp4 = (dict(record) for record in first.items[0]["media"])
    assert (png["status"], mp4["status"]) == ("downloaded", "downloaded")
    assert place.get(png["path"]) == (media.PNG, "image/png")
    assert place.get(mp4["path"]) == (media.MP4, "video/mp4")
    assert first.stat("mediapipe/status/downloaded") == 2
    index = [key for key in place.names() if key.startswith(INDEX)]
    assert len(index) == 2
    entries = [json.loads(place.get(key)[0]) for key in index]
    assert sorted(entry["path"] for entry in entries) == sorted([png["path"], mp4["path"]])
    assert {entry["size"] for entry in entries} == {len(media.PNG), len(media.MP4)}
    content = [key for key in place.names() if key.startswith(CONTENT)]
    assert sorted(json.loads(place.get(key)[0])["path"] for key in content) == sorted(
        [png["path"], mp4["path"]]
    )
    assert sorted(place.names()) == sorted([png["path"], mp4["path"], *index, *content])
    assert place.leftovers() == []

    server.reset()
    second = await crawl([{"images": sources}], place.settings())
    again = [dict(record) for record in second.items[0]["media"]]
    assert [(r["status"], r["path"]) for r in again] == [
        ("uptodate", png["path"]),
        ("uptodate", mp4["path"]),
    ]
    assert second.items[0]["images"] == first.items[0]["images"]
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_an_object_removed_behind_the_index_is_downloaded_again(
    crawl: Crawl, server: MockServer, place: Place
) -> None:
    source = f"{server.url}/img/png"
    first = record_of((await crawl([{"images": [source]}], place.settings())).items[0])
    place.server.client().delete_object(Bucket=BUCKET, Key=place.prefix + first["path"])

    server.reset()
    second = record_of((await crawl([{"images": [source]}], place.settings())).items[0])
    assert second["status"] == "downloaded"
    assert server.count("/img/png") == 1
    assert place.get(second["path"]) == (media.PNG, "image/png")


@pytest.mark.parametrize("route", ["/status/404", "/img/page", "/img/html-as-png"])
@pytest_twisted.ensureDeferred
async def test_a_failed_source_leaves_no_object_and_no_index(
    crawl: Crawl, server: MockServer, place: Place, route: str
) -> None:
    result = await crawl([{"images": [f"{server.url}{route}"]}], place.settings())
    assert record_of(result.items[0])["status"] == "failed"
    assert place.names() == []
    assert place.leftovers() == []


@pytest_twisted.ensureDeferred
async def test_a_refused_upload_is_a_storage_failure_with_nothing_left(
    crawl: Crawl, server: MockServer, s3_server: S3Server, tmp_path: Path
) -> None:
    # A prefix of 1,010 characters: the server refuses the object's key as longer than 1,024.
    long = Place(s3_server, "/".join(["p" * 100] * 10) + "/", tmp_path / "temp")
    result = await crawl([{"images": [f"{server.url}/img/png"]}], long.settings())
    record = record_of(result.items[0])
    assert (record["status"], record["reason"]) == ("failed", "storage")
    (warning,) = result.warnings
    assert f"in {long.uri}: An error occurred (KeyTooLongError)" in warning
    assert ".part" not in warning  # the local temporary file is no concern of the user
    assert long.names() == []
    assert long.leftovers() == []


@pytest_twisted.ensureDeferred
async def test_a_data_uri_becomes_an_object(crawl: Crawl, server: MockServer, place: Place) -> None:
    gif = "data:image/gif;base64," + base64.b64encode(media.GIF).decode()
    # The server alone would call a WAV object audio/wave: the sniffed type must be sent.
    wav = "data:audio/wav;base64," + base64.b64encode(media.WAV).decode()
    first = await crawl([{"images": [gif, wav]}], place.settings())
    records = [dict(record) for record in first.items[0]["media"]]
    assert [record["status"] for record in records] == ["data", "data"]
    assert place.get(records[0]["path"]) == (media.GIF, "image/gif")
    assert place.get(records[1]["path"]) == (media.WAV, "audio/wav")
    assert len([key for key in place.names() if key.startswith(INDEX)]) == 2

    second = await crawl([{"images": [gif, wav]}], place.settings())
    again = [dict(record) for record in second.items[0]["media"]]
    assert [(r["status"], r["path"]) for r in again] == [
        ("data", records[0]["path"]),
        ("data", records[1]["path"]),
    ]


@pytest_twisted.ensureDeferred
async def test_a_dead_runs_temporary_files_are_swept_from_the_temp_dir(
    crawl: Crawl, server: MockServer, place: Place
) -> None:
    tmp = place.temp_dir / ".mediapipe" / "tmp"
    tmp.mkdir(parents=True)
    dead = tmp / "999999999-deadbeef-0123456789abcdef.part"  # above any pid_max: not running
    dead.write_bytes(b"half a body")
    result = await crawl([{"images": [f"{server.url}/img/png"]}], place.settings())
    assert record_of(result.items[0])["status"] == "downloaded"
    assert place.leftovers() == []


@pytest_twisted.ensureDeferred
async def test_a_stale_multipart_upload_is_aborted_at_the_next_start(
    crawl: Crawl, server: MockServer, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mediapipe.store.s3

    # No journal here knows the upload: it is aborted once old, and "old" is now at 0 hours
    # (tests/test_s3_crash.py: a young one is kept, a dead process's is aborted at once).
    monkeypatch.setattr(mediapipe.store.s3, "STALE_UPLOAD_HOURS", 0.0)
    client = place.server.client()
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=place.prefix + "killed.bin")
    client.upload_part(
        Bucket=BUCKET,
        Key=place.prefix + "killed.bin",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * 1024,
    )
    other = client.create_multipart_upload(Bucket=BUCKET, Key="elsewhere/other.bin")

    def pending(prefix: str) -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
        return [entry["Key"] for entry in uploads]

    assert pending(place.prefix) == [place.prefix + "killed.bin"]
    await crawl([{"images": [f"{server.url}/img/png"]}], place.settings())
    assert pending(place.prefix) == []
    assert "killed.bin" not in place.names()
    # Uploads outside the store's prefix are not the store's to abort.
    assert pending("elsewhere/") == ["elsewhere/other.bin"]
    client.abort_multipart_upload(
        Bucket=BUCKET, Key="elsewhere/other.bin", UploadId=other["UploadId"]
    )


@pytest_twisted.ensureDeferred
async def test_a_large_file_goes_up_in_parts_and_arrives_whole(
    crawl: Crawl, server: MockServer, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mediapipe.store.s3

    monkeypatch.setattr(mediapipe.store.s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(mediapipe.store.s3, "MULTIPART_CHUNK", 5 * 1024 * 1024)
    big = media.image_bytes("PNG", (16, 16), "red") + b"\0" * (11 * 1024 * 1024)
    server.httpd.routes["/big.png"] = body(big, "image/png")
    result = await crawl([{"images": [f"{server.url}/big.png"]}], place.settings())
    record = record_of(result.items[0])
    assert record["status"] == "downloaded"
    assert place.get(record["path"]) == (big, "image/png")
    head = place.server.client().head_object(Bucket=BUCKET, Key=place.prefix + record["path"])
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag: three parts
    assert place.leftovers() == []


# -- start errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MEDIAPIPE_STORE": "s3://no-such-bucket/media/"}, "bucket 'no-such-bucket' does not"),
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "denied: check AWS_ACCESS_KEY_ID"),
        ({"AWS_ACCESS_KEY_ID": "nobody"}, "denied: check AWS_ACCESS_KEY_ID"),
        (
            {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_ports(1)[0]}"},
            "cannot reach the S3 endpoint http://127.0.0.1:",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_an_unusable_bucket_fails_the_crawl_at_start(
    crawl: Crawl, server: MockServer, place: Place, change: dict[str, str], message: str
) -> None:
    settings = place.settings(change)
    with pytest.raises(SettingError, match="MEDIAPIPE_STORE") as failure:
        await crawl([{"images": [f"{server.url}/img/png"]}], settings)
    assert message in str(failure.value)
    assert settings["MEDIAPIPE_STORE"] in str(failure.value)
    assert server.requested == []
    assert place.names() == []


# -- copy_media from a plain script ----------------------------------------------------------


def test_copy_media_stores_into_a_bucket_from_a_plain_script(
    server: MockServer, place: Place, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        """\
        import asyncio, json, sys
        from mediapipe import copy_media

        url, uri, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        options = {"media_dir": uri, "return_target": True, "settings": settings}
        result = asyncio.run(copy_media([url], **options))
        thumbs = asyncio.run(copy_media([url], thumbnail=True, **options))
        print(json.dumps([result, thumbs]))
        """
    )
    settings = {**place.settings(), "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True}
    process = run_python(
        tmp_path, "to_s3.py", script, f"{server.url}/img/png", place.uri, json.dumps(settings)
    )
    [[(url, path)], [(thumb_url, thumb_path)]] = json.loads(process.stdout.splitlines()[-1])
    assert url == f"/media/{path}" or url.startswith(f"/media/{path}?")
    assert place.get(path) == (media.PNG, "image/png")
    assert thumb_path.startswith("thumbnails/")
    assert thumb_url.endswith(thumb_path.removeprefix("thumbnails/"))
    assert place.get(thumb_path) == (media.PNG, "image/png")
    assert f"{INDEX}" in "\n".join(place.names())
    assert f"thumbnails/{INDEX}" in "\n".join(place.names())


def test_a_missing_boto3_is_a_clear_setting_error(place: Place, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """\
        import json, sys
        sys.modules["boto3"] = None  # as if it were not installed
        from scrapy.settings import Settings
        from mediapipe.settings import MediaConfig, SettingError
        from mediapipe.store.registry import open_store

        settings = Settings(json.loads(sys.argv[1]))
        try:
            open_store(MediaConfig.from_settings(settings), settings)
        except SettingError as exc:
            print(exc)
        """
    )
    process = run_python(tmp_path, "no_boto3.py", script, json.dumps(place.settings()))
    assert process.stdout.strip() == (
        f"MEDIAPIPE_STORE = {place.uri!r}: an s3:// store needs boto3: "
        "pip install 'scrapy-mediapipe[s3]'"
    )


@pytest.mark.parametrize(("setting", "lanes"), [(None, 8), (3, 3)])
def test_a_bucket_gets_more_writer_threads_and_a_pool_for_all_of_them(
    place: Place, setting: int | None, lanes: int
) -> None:
    from mediapipe.store.registry import open_store, store_lookup_threads, store_writer_threads

    extra = {} if setting is None else {"MEDIAPIPE_WRITER_THREADS": setting}
    settings = Settings(place.settings(extra))
    store = open_store(MediaConfig.from_settings(settings), settings)
    try:
        assert (store_writer_threads(store), store_lookup_threads(store)) == (lanes, 8)
        client = store._client  # type: ignore[attr-defined]
        assert client.meta.config.max_pool_connections == lanes + 8 + 2
    finally:
        store.close()
    local = FilesystemStore(place.temp_dir / "local")
    assert (store_writer_threads(local), store_lookup_threads(local)) == (2, 1)
