"""The corpora a run measures: which corpus files, which URLs, how many per item."""

from __future__ import annotations

from dataclasses import dataclass

from bench.corpus import HUGE_PATH, large_path, small_path

CORPORA: tuple[str, ...] = ("small", "large", "huge", "long")
# Into SeaweedFS instead of a local folder; not in the default run (see bench/README.md).
S3_CORPORA: tuple[str, ...] = ("s3-small", "s3-huge")
ALL_CORPORA: tuple[str, ...] = CORPORA + S3_CORPORA


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    title: str
    paths: tuple[str, ...]  # corpus files it needs
    repeats: int  # every path is fetched this many times, as distinct URLs (?r=N)
    urls_per_item: int
    checkpoint_every: int
    s3: bool = False  # the store is a fresh prefix of the benchmark's S3 bucket

    def urls(self, base: str) -> list[str]:
        if self.repeats == 1:
            return [f"{base}/{path}" for path in self.paths]
        return [f"{base}/{path}?r={rep}" for rep in range(self.repeats) for path in self.paths]

    @property
    def url_count(self) -> int:
        return len(self.paths) * self.repeats


def make_workload(
    name: str, small: int, large: int, long: int, per_item: int, s3_small: int = 1000
) -> Workload:
    if name == "small":
        paths = tuple(small_path(index) for index in range(small))
        return Workload(
            name,
            f"{small} small images (5-200 kB, JPEG/PNG/GIF/WebP, 1 in 10 extensionless)",
            paths,
            1,
            per_item,
            max(1, small // 10),
        )
    if name == "large":
        paths = tuple(large_path(index) for index in range(large))
        # All in one item, so that every file is in flight at once.
        return Workload(
            name, f"{large} x 200 MiB video/mp4, all at once", paths, 1, max(1, large), 1
        )
    if name == "huge":
        return Workload(name, "one 1 GiB video/mp4", (HUGE_PATH,), 1, 1, 1)
    if name == "long":
        paths = tuple(small_path(index) for index in range(small))
        repeats = max(1, long // max(1, small))
        return Workload(
            name,
            f"long crawl: the {small} small images x {repeats} (distinct ?r=N URLs)",
            paths,
            repeats,
            per_item,
            small,
        )
    if name == "s3-small":
        paths = tuple(small_path(index) for index in range(s3_small))
        return Workload(
            name,
            f"the first {s3_small} small images into S3 (SeaweedFS)",
            paths,
            1,
            per_item,
            max(1, s3_small // 10),
            s3=True,
        )
    if name == "s3-huge":
        title = "one 1 GiB video/mp4 into S3 (SeaweedFS)"
        return Workload(name, title, (HUGE_PATH,), 1, 1, 1, s3=True)
    raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(ALL_CORPORA)}")
