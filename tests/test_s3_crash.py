"""Crash safety of the S3 store's multipart uploads, with several crawls on one prefix.

A crawl killed mid-upload leaves an unfinished upload that the next start on the same machine
aborts at once, known from the journal of open uploads under MEDIAPIPE_TEMP_DIR; uploads of
processes that still run, here or elsewhere, are left alone, and an upload no journal here knows
is aborted only once it is older than ``STALE_UPLOAD_HOURS``. Against a real server (SeaweedFS).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

import mediapipe.store.s3
from mediapipe.store import StorageError
from mediapipe.store.files import FileFacts
from mediapipe.store.s3 import S3Store
from tests import media
from tests.mockserver import body
from tests.s3server import BUCKET
from tests.scripts import ROOT, items_crawl_script
from tests.test_s3store import Place

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.mockserver import MockServer
    from tests.s3server import S3Server

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part S3 takes
POLL_SECONDS = 60

# A crawl whose multipart uploads go in 5 MiB parts, each part held back by PART_DELAY seconds
# (argv) so that the test can kill the crawl between two parts.
CRAWL_SCRIPT = items_crawl_script(
    "settings_json, items_file, feed, part_delay",
    """
        **json.loads(settings_json),
        "FEEDS": {feed: {"format": "jsonlines"}},""",
    preamble="""
import boto3.session

import mediapipe.store.s3

mediapipe.store.s3.MULTIPART_THRESHOLD = mediapipe.store.s3.MULTIPART_CHUNK = 5 * 1024 * 1024
if float(part_delay):
    make_client = boto3.session.Session.client

    def client(self, *args, **kwargs):
        made = make_client(self, *args, **kwargs)
        made.meta.events.register(
            "before-send.s3.UploadPart", lambda **_: time.sleep(float(part_delay))
        )
        return made

    boto3.session.Session.client = client
""",
)

# Another worker on this machine: opens the store (which sweeps like any start), starts multipart
# uploads of one part each through the store's client, prints their ids, then runs on ("live")
# or exits without finishing them ("dead").
WORKER_SCRIPT = """
import json
import os
import sys
import time
from pathlib import Path

from mediapipe.store.s3 import S3Store

uri, temp_dir, options, mode, *keys = sys.argv[1:]
store = S3Store(uri, temp_dir=Path(temp_dir), client_options=json.loads(options))
store.open()
client = store._client
for key in keys:
    upload = client.create_multipart_upload(Bucket=store.bucket, Key=store.prefix + key)
    client.upload_part(
        Bucket=store.bucket,
        Key=store.prefix + key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"p" * 1024,
    )
    print(upload["UploadId"], flush=True)
if mode == "dead":
    os._exit(0)
time.sleep(120)
"""


@pytest.fixture
def place(s3_server: S3Server, tmp_path: Path) -> Place:
    return Place(s3_server, f"crash-{uuid.uuid4().hex[:12]}/media/", tmp_path / "temp")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def h16(source: str) -> str:
    return sha256(source.encode("utf-8"))[:16]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def pending(place: Place, prefix: str | None = None) -> dict[str, str]:
    """Unfinished multipart uploads under the prefix: upload id to key."""
    listing = place.server.client().list_multipart_uploads(
        Bucket=BUCKET, Prefix=place.prefix if prefix is None else prefix
    )
    return {entry["UploadId"]: entry["Key"] for entry in listing.get("Uploads", [])}


def parts(place: Place, key: str, upload_id: str) -> int:
    listing = place.server.client().list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    return len(listing.get("Parts", []))


def journal(place: Place) -> dict[str, dict[str, Any]]:
    """The journal's entries, by file name."""
    folder = place.temp_dir / ".mediapipe" / "uploads"
    if not folder.exists():
        return {}
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def client_options(place: Place) -> dict[str, Any]:
    settings = place.server.settings()
    return {
        "aws_access_key_id": settings["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": settings["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": None,
        "endpoint_url": settings["AWS_ENDPOINT_URL"],
        "region_name": settings["AWS_REGION_NAME"],
        "use_ssl": False,
        "verify": None,
    }


def open_store(place: Place) -> S3Store:
    store = S3Store(place.uri, temp_dir=place.temp_dir, client_options=client_options(place))
    store.open()
    return store


def start_upload(place: Place, key: str) -> str:
    """Start a multipart upload of one part with a plain client, as another machine's worker."""
    client = place.server.client()
    upload_id: str = client.create_multipart_upload(Bucket=BUCKET, Key=place.prefix + key)[
        "UploadId"
    ]
    client.upload_part(
        Bucket=BUCKET, Key=place.prefix + key, UploadId=upload_id, PartNumber=1, Body=b"w" * 1024
    )
    return upload_id


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Worker processes a test starts; those still running are killed by PID at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def start_worker(
    workers: list[subprocess.Popen[str]], place: Place, tmp_path: Path, mode: str, *keys: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """A worker's process and the ids of its uploads, once they are started (and, for a dead
    worker, once it exited)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    options = json.dumps(client_options(place))
    process = subprocess.Popen(
        [sys.executable, str(script), place.uri, str(place.temp_dir), options, mode, *keys],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    workers.append(process)
    assert process.stdout is not None
    upload_ids = [process.stdout.readline().strip() for _ in keys]
    assert all(upload_ids), f"the {mode} worker did not start its uploads"
    if mode == "dead":
        assert process.wait(timeout=30) == 0
    return process, upload_ids


# -- a crawl killed with SIGKILL mid-upload --------------------------------------------------


def big_body(index: int) -> bytes:
    """An MP4 of 6 MiB: two parts (5 MiB and 1 MiB); distinct per index."""
    return media.MP4 + bytes([index + 1]) * (6 * MIB - len(media.MP4))


def run_crawl(
    tmp_path: Path, place: Place, sources: list[str], feed: Path, part_delay: float
) -> subprocess.Popen[bytes]:
    script = tmp_path / "crawl.py"
    script.write_text(CRAWL_SCRIPT)
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"images": sources}]))
    settings = json.dumps(place.settings({"DOWNLOAD_TIMEOUT": 60}))
    command = [sys.executable, str(script), settings, str(items), str(feed), str(part_delay)]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_for_a_part(place: Place, process: subprocess.Popen[bytes]) -> tuple[str, str]:
    """Poll until an upload under the prefix has a part on the server; its (id, key)."""
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the crawl ended before it could be killed"
        for upload_id, key in pending(place).items():
            if parts(place, key, upload_id) >= 1:
                return upload_id, key
        time.sleep(0.05)
    raise AssertionError(f"no upload with a part under {place.uri} within {POLL_SECONDS} s")


def objects(place: Place) -> dict[str, int]:
    """Every media object under the prefix (the index left out), by name: its size."""
    listing = place.server.client().list_objects_v2(Bucket=BUCKET, Prefix=place.prefix)
    return {
        entry["Key"][len(place.prefix) :]: entry["Size"]
        for entry in listing.get("Contents", [])
        if not entry["Key"][len(place.prefix) :].startswith(".mediapipe/")
    }


def check_objects(place: Place, expected: dict[str, bytes]) -> None:
    """Every object under a final key holds exactly the bytes of the source its name hashes."""
    by_hash = {h16(source): payload for source, payload in expected.items()}
    for name, size in objects(place).items():
        key = name.rsplit("_", 1)[-1].split(".", 1)[0]
        assert key in by_hash, f"{name} is no source's object"
        assert size == len(by_hash[key]), f"{name} is partial: {size} bytes"
        assert sha256(place.get(name)[0]) == sha256(by_hash[key]), f"{name}: wrong bytes"


def test_a_crawl_killed_mid_upload_leaves_nothing_once_the_next_crawl_ran(
    server: MockServer, place: Place, tmp_path: Path
) -> None:
    expected: dict[str, bytes] = {}
    for index in range(2):
        expected[f"{server.url}/s3crash/big-{index}.mp4"] = big_body(index)
    for index in range(2):
        expected[f"{server.url}/s3crash/small-{index}.png"] = media.image_bytes(
            "PNG", (index + 3, 4), "teal"
        )
    for source, payload in expected.items():
        content_type = "video/mp4" if source.endswith(".mp4") else "image/png"
        server.httpd.routes[source.removeprefix(server.url)] = body(payload, content_type)
    sources = list(expected)

    # -- run 1: killed between two parts of a multipart upload ------------------------------
    killed = run_crawl(tmp_path, place, sources, tmp_path / "killed.jsonl", part_delay=1.0)
    try:
        upload_id, key = wait_for_a_part(place, killed)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        if killed.poll() is None:
            os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed.stderr is not None
        killed.stderr.close()
    assert killed.returncode == -signal.SIGKILL
    assert upload_id in pending(place), "the kill must leave the upload unfinished"
    # Both big files were on their way (two writer threads), each journaled by the killed pid.
    entries = journal(place)
    assert {entry["upload_id"]: entry["key"] for entry in entries.values()} == pending(place)
    assert upload_id in pending(place)
    assert all(name.split("-")[1] == str(killed.pid) for name in entries)
    assert all(entry["owner"]["pid"] == killed.pid for entry in entries.values())
    check_objects(place, expected)
    assert key.removeprefix(place.prefix) not in objects(place)

    # -- run 2: the same crawl, to completion, on the same store and temporary folder --------
    feed = tmp_path / "done.jsonl"
    done = run_crawl(tmp_path, place, sources, feed, part_delay=0)
    _, stderr = done.communicate(timeout=120)
    assert done.returncode == 0, stderr[-4000:].decode(errors="replace")

    # At 24 hours the age rule cannot have done it: the journal did.
    assert mediapipe.store.s3.STALE_UPLOAD_HOURS >= 1
    assert pending(place) == {}
    assert journal(place) == {}
    assert list((place.temp_dir / ".mediapipe" / "uploads").iterdir()) == []
    records = {
        record["source"]: record
        for line in feed.read_text().splitlines()
        for record in json.loads(line)["media"]
    }
    assert set(records) == set(expected)
    for source, payload in expected.items():
        record = records[source]
        assert record["status"] in {"downloaded", "uptodate"}, record
        assert (record["sha256"], record["size"]) == (sha256(payload), len(payload))
        assert sha256(place.get(record["path"])[0]) == sha256(payload), source
    assert sorted(objects(place)) == sorted(record["path"] for record in records.values())
    check_objects(place, expected)
    assert place.leftovers() == []


# -- uploads of other workers ----------------------------------------------------------------


def test_a_young_upload_no_journal_knows_is_left_to_its_worker(place: Place) -> None:
    upload_id = start_upload(place, "other-machine.bin")
    store = open_store(place)
    store.close()
    assert pending(place) == {upload_id: place.prefix + "other-machine.bin"}
    # Still the other worker's to finish.
    client = place.server.client()
    etag = client.list_parts(
        Bucket=BUCKET, Key=place.prefix + "other-machine.bin", UploadId=upload_id
    )["Parts"][0]["ETag"]
    client.complete_multipart_upload(
        Bucket=BUCKET,
        Key=place.prefix + "other-machine.bin",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert place.get("other-machine.bin")[0] == b"w" * 1024


def test_an_old_upload_no_journal_knows_is_aborted_but_a_live_workers_is_kept(
    place: Place,
    tmp_path: Path,
    workers: list[subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, [live_id] = start_worker(workers, place, tmp_path, "live", "live.bin")
    unknown_id = start_upload(place, "unknown.bin")
    elsewhere = f"elsewhere-{uuid.uuid4().hex[:8]}/"
    client = place.server.client()
    outside = client.create_multipart_upload(Bucket=BUCKET, Key=elsewhere + "x.bin")["UploadId"]
    monkeypatch.setattr(mediapipe.store.s3, "STALE_UPLOAD_HOURS", 0.0)  # every upload is "old"

    open_store(place).close()
    # This machine's journal says the live worker's upload is in progress, whatever its age.
    assert pending(place) == {live_id: place.prefix + "live.bin"}
    assert unknown_id not in pending(place)
    assert pending(place, elsewhere) == {outside: elsewhere + "x.bin"}
    client.abort_multipart_upload(Bucket=BUCKET, Key=elsewhere + "x.bin", UploadId=outside)


# -- the journal -----------------------------------------------------------------------------


def test_journaled_uploads_of_dead_processes_are_aborted_and_of_live_ones_kept(
    place: Place, tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    # The live one first: the dead one's start keeps its upload, as a live process's.
    live, [live_id] = start_worker(workers, place, tmp_path, "live", "live.bin")
    _, [dead_id] = start_worker(workers, place, tmp_path, "dead", "dead.bin")
    assert set(pending(place)) == {dead_id, live_id}
    owners = {entry["upload_id"]: entry["owner"]["pid"] for entry in journal(place).values()}
    assert owners[live_id] == live.pid
    assert set(owners) == {dead_id, live_id}

    open_store(place).close()
    assert pending(place) == {live_id: place.prefix + "live.bin"}
    assert [entry["upload_id"] for entry in journal(place).values()] == [live_id]

    os.kill(live.pid, signal.SIGKILL)
    live.wait(timeout=30)
    open_store(place).close()
    assert pending(place) == {}
    assert journal(place) == {}


def rewrite_owner(place: Place, upload_id: str, **owner: Any) -> None:
    folder = place.temp_dir / ".mediapipe" / "uploads"
    for path in folder.glob("*.json"):
        entry = json.loads(path.read_text())
        if entry["upload_id"] == upload_id:
            entry["owner"].update(owner)
            path.write_text(json.dumps(entry))


def test_a_reused_pid_does_not_keep_a_dead_processs_upload(
    place: Place, tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    live, _ = start_worker(workers, place, tmp_path, "live", "live.bin")
    _, [by_us, by_other, from_elsewhere] = start_worker(
        workers, place, tmp_path, "dead", "our-pid.bin", "other-pid.bin", "elsewhere.bin"
    )
    # The dead worker's pid, as if now held by this process (an earlier run of it wrote the entry)
    # and by the live worker (which started later than the entry's writer): neither wrote them.
    rewrite_owner(place, by_us, pid=os.getpid(), run="0badc0de")
    rewrite_owner(place, by_other, pid=live.pid, started="1")
    # Written on another machine (or in another container): its pid says nothing here.
    rewrite_owner(place, from_elsewhere, host="another-machine")

    open_store(place).close()
    left = pending(place)
    assert by_us not in left
    assert by_other not in left
    assert from_elsewhere in left
    assert len(left) == 2  # and the live worker's
    assert from_elsewhere in [entry["upload_id"] for entry in journal(place).values()]
    place.server.client().abort_multipart_upload(
        Bucket=BUCKET, Key=place.prefix + "elsewhere.bin", UploadId=from_elsewhere
    )


def big_temp(store: S3Store, size: int) -> Any:
    temp = store.new_temp()
    temp.write(media.MP4 + b"\7" * (size - len(media.MP4)))
    return temp


def commit(store: S3Store, temp: Any, name: str) -> Any:
    return store.commit(
        temp,
        name,
        h16(name),
        FileFacts(mime="video/mp4", width=None, height=None, credentials=False),
    )


def test_an_upload_is_journaled_before_its_first_part_and_forgotten_once_complete(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mediapipe.store.s3, "MULTIPART_THRESHOLD", PART)
    monkeypatch.setattr(mediapipe.store.s3, "MULTIPART_CHUNK", PART)
    store = open_store(place)
    seen: list[list[str]] = []
    store._client.meta.events.register(
        "before-send.s3.UploadPart",
        lambda **_: seen.append([entry["key"] for entry in journal(place).values()]),
    )
    record = commit(store, big_temp(store, 2 * PART + 1), "whole.mp4")
    store.close()
    assert seen == [[place.prefix + "whole.mp4"]] * 3
    assert journal(place) == {}
    assert pending(place) == {}
    assert sha256(place.get("whole.mp4")[0]) == record.sha256


def test_an_upload_that_cannot_be_journaled_does_not_go_ahead(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mediapipe.store.s3, "MULTIPART_THRESHOLD", PART)
    monkeypatch.setattr(mediapipe.store.s3, "MULTIPART_CHUNK", PART)
    store = open_store(place)
    folder = place.temp_dir / ".mediapipe" / "uploads"
    folder.rmdir()
    folder.write_bytes(b"not a folder")  # no entry can be written in it
    sent: list[object] = []
    store._client.meta.events.register("before-send.s3.UploadPart", lambda **kw: sent.append(kw))
    with pytest.raises(StorageError) as failure:
        commit(store, big_temp(store, PART + 1), "unjournaled.mp4")
    store.close()
    message = str(failure.value)
    assert f"cannot store unjournaled.mp4 in {place.uri}: cannot record its multipart" in message
    assert str(folder) in message
    assert sent == []
    assert pending(place) == {}
    assert objects(place) == {}
    assert place.leftovers() == []
