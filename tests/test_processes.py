"""Whose is a temporary file: the rule every sweep at start follows, so that it never removes a
file a live crawl is writing, on this machine or on another one sharing the folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from mediapipe.store import processes
from mediapipe.store.local import FilesystemStore
from mediapipe.store.processes import FOREIGN_STALE_S, RUN_TAG, owner_may_run, owner_tag

if TYPE_CHECKING:
    from pathlib import Path

HOUR = 3600.0


def dead_pid() -> int:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(ended.stdout)


def tag(host: str, boot: str, pid: int, run: str = "0badc0de") -> str:
    return f"h{processes._digest(host)}b{processes._digest(boot)}-{pid}-{run}"


def here(pid: int, run: str = "0badc0de") -> str:
    return tag(processes.host_identity(), processes.boot_id(), pid, run)


def test_this_process_names_its_files_with_machine_boot_pid_and_run() -> None:
    assert owner_tag() == here(os.getpid(), RUN_TAG)
    assert owner_may_run(f"{owner_tag()}-1f.part", 0.0)


@pytest.mark.parametrize("age", [0.0, FOREIGN_STALE_S - HOUR])
def test_another_machines_file_is_kept_while_it_may_be_written(age: float) -> None:
    # Its pid means nothing here, dead or alive on this machine.
    name = tag("other-host /proc/ns/pid:[1]", "another-boot", dead_pid())
    assert owner_may_run(f"{name}-0.part", age)


def test_another_machines_file_untouched_for_a_day_is_removed() -> None:
    name = tag("other-host", "another-boot", os.getppid())
    assert not owner_may_run(f"{name}-0.part", FOREIGN_STALE_S + 1)


def test_this_machines_files_follow_their_process() -> None:
    assert owner_may_run(f"{here(os.getppid())}-3.part", 0.0)  # a running process
    assert not owner_may_run(f"{here(dead_pid())}-3.part", 0.0)
    # Our own pid with another run tag: an earlier process that had this pid.
    assert not owner_may_run(f"{here(os.getpid(), 'feedf00d')}-3.part", 0.0)


def test_a_file_from_before_this_machine_restarted_is_removed() -> None:
    name = tag(processes.host_identity(), "the boot before", os.getppid())
    assert not owner_may_run(f"{name}-0.part", 0.0)


def test_names_of_version_0_2_are_this_machines() -> None:
    assert owner_may_run(f"{os.getppid()}-bbbb-2.part", 0.0)
    assert not owner_may_run(f"{dead_pid()}-aaaa-1.part", 0.0)
    assert owner_may_run(f"{os.getpid()}-{RUN_TAG}-5.part", 0.0)


@pytest.mark.parametrize("name", ["garbage.part", "0-abcd-1.part", "hxyzb-1-2.part", ""])
def test_names_of_no_known_form_are_nobodys(name: str) -> None:
    assert not owner_may_run(name, 0.0)


def test_the_sweep_keeps_a_live_file_of_another_machine(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "shared")
    store.open()
    folder = store.root / ".mediapipe" / "tmp"
    fresh = folder / f"{tag('machine-b', 'b-boot', 4242)}-7.part"
    stale = folder / f"{tag('machine-c', 'c-boot', 4343)}-8.part"
    dead = folder / f"{here(dead_pid())}-9.part"
    for path in (fresh, stale, dead):
        path.write_bytes(b"partial")
    two_days_ago = time.time() - 2 * FOREIGN_STALE_S
    os.utime(stale, (two_days_ago, two_days_ago))
    store.close()
    assert FilesystemStore(store.root).sweep() == 2
    assert [path.name for path in folder.iterdir()] == [fresh.name]
