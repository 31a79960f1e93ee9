"""All ``MEDIAPIPE_*`` settings, read and validated once into a frozen :class:`MediaConfig`."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediapipe.committing import SizeRule
from mediapipe.naming import MIN_NAME_BYTES

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

DEFAULTS: dict[str, Any] = {
    "MEDIAPIPE_STORE": "generated_images",
    "MEDIAPIPE_URLS_FIELD": "images",
    "MEDIAPIPE_TAGS_FIELD": "tags",
    "MEDIAPIPE_ALT_FIELD": "alt",
    "MEDIAPIPE_RESULTS_FIELD": "media",
    "MEDIAPIPE_MEDIA_TYPES": ["image/*", "audio/*", "video/*"],
    "MEDIAPIPE_MAX_SIZE": None,  # None: Scrapy's DOWNLOAD_MAXSIZE
    "MEDIAPIPE_MAX_NAME_BYTES": 200,
    "MEDIAPIPE_URL_PREFIX": "/media/",
    "MEDIAPIPE_ADD_URL": True,
    "MEDIAPIPE_EXPIRES": 90,
    "MEDIAPIPE_CACHE_SIZE": 10_000,
    "MEDIAPIPE_FSYNC": False,
    "MEDIAPIPE_DEDUPLICATE": True,
    "MEDIAPIPE_WRITER_THREADS": None,  # None: the store's own choice (local 2, S3 8)
    "MEDIAPIPE_WRITER_PROCESS": True,
    "MEDIAPIPE_FREEZE_GC": True,
    "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False,
    "MEDIAPIPE_ALLOWED_HOSTS": [],
    "MEDIAPIPE_HOST_PROFILES": {},
    "MEDIAPIPE_RETRY_TIMES": 2,
    "MEDIAPIPE_RETRY_BACKOFF": 0.5,
    "MEDIAPIPE_RETRY_MAX_DELAY": 30.0,
    "MEDIAPIPE_MAX_PIXELS": 178_956_970,
    # Smaller media fail with too-small; 0: no minimum.
    "MEDIAPIPE_MIN_SIZE": 0,
    "MEDIAPIPE_MIN_WIDTH": 0,
    "MEDIAPIPE_MIN_HEIGHT": 0,
    # Thumbnails (mediapipe.thumbnails): name -> [width, height] bounding box; none by default.
    "MEDIAPIPE_THUMBS": {},
    "MEDIAPIPE_THUMBS_FORMAT": "webp",
    "MEDIAPIPE_THUMBS_URL_PREFIX": "/thumbnail/",
    "MEDIAPIPE_THUMBS_THREADS": 2,
    # The item field with the URL of the page the item came from: sent as the Referer.
    "MEDIAPIPE_REFERER_FIELD": "page",
    # Several workers (mediapipe.coordination): off unless MEDIAPIPE_CLAIMS is True.
    "MEDIAPIPE_CLAIMS": False,
    "MEDIAPIPE_REDIS_URL": None,  # None: scrapy-redis's REDIS_URL, or REDIS_HOST and REDIS_PORT
    "MEDIAPIPE_REDIS_KEY": "%(spider)s:mediapipe",
    "MEDIAPIPE_CLAIM_LEASE": 30.0,
    "MEDIAPIPE_CLAIM_KEEP": 7,
}

_MAX_FILE_NAME_BYTES = 255  # the limit of every common file system


class SettingError(ValueError):
    """A ``MEDIAPIPE_*`` setting has a value the add-on cannot work with."""


class _OneLineSettingErrors(logging.Filter):
    """Shows a :class:`SettingError` that ended a crawl as one line, without a traceback.

    ``scrapy crawl`` reports an exception from a crawl's start through asyncio's handler for
    unretrieved task exceptions, with a long traceback that buries the one sentence that
    matters; that sentence names the setting and what it must be.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, SettingError):
            record.msg, record.args, record.exc_info, record.exc_text = (
                "mediapipe cannot start: %s",
                (error,),
                None,
                None,
            )
        return True


_ONE_LINE = _OneLineSettingErrors()


def report_setting_errors_in_one_line() -> None:
    """Install the filter on asyncio's logger (once; called when the add-on is enabled)."""
    logging.getLogger("asyncio").addFilter(_ONE_LINE)


@dataclass(frozen=True, slots=True)
class HostProfile:
    """Credentials and TLS choice for one host (contract §7.2)."""

    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    verify_tls: bool | None = None

    @property
    def carries_credentials(self) -> bool:
        return bool(self.headers or self.cookies)


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """The validated settings of one crawl."""

    store: Path | str  # a str for a URI such as s3://bucket/prefix/
    urls_field: str
    tags_field: str
    alt_field: str
    results_field: str | None
    media_types: tuple[str, ...]
    max_size: int
    max_name_bytes: int
    url_prefix: str
    add_url: bool | str
    expires_days: float
    cache_size: int
    fsync: bool
    writer_threads: int | None
    allow_private_networks: bool = False
    allowed_hosts: tuple[str, ...] = ()
    host_profiles: dict[str, HostProfile] = field(default_factory=dict)
    retry_times: int = 2
    retry_backoff: float = 0.5
    retry_max_delay: float = 30.0
    max_pixels: int = 178_956_970
    deduplicate: bool = True
    writer_process: bool = True
    freeze_gc: bool = True
    min_size: int = 0
    min_width: int = 0
    min_height: int = 0
    thumbs: tuple[ThumbBox, ...] = ()
    thumbs_format: str = "webp"
    thumbs_url_prefix: str = "/thumbnail/"
    thumbs_threads: int = 2
    referer_field: str | None = "page"

    @property
    def size_rule(self) -> SizeRule:
        return SizeRule(self.max_pixels, self.min_size, self.min_width, self.min_height)

    def __post_init__(self) -> None:
        fields = [self.urls_field, self.tags_field, self.alt_field]
        if self.results_field is not None:
            fields.append(self.results_field)
        if len(set(fields)) != len(fields):
            raise SettingError(
                "MEDIAPIPE_URLS_FIELD, MEDIAPIPE_TAGS_FIELD, MEDIAPIPE_ALT_FIELD and "
                f"MEDIAPIPE_RESULTS_FIELD must name different fields, got {fields}"
            )

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> MediaConfig:
        def get(name: str) -> Any:
            value = settings.get(name)
            return DEFAULTS[name] if value is None else value

        max_size = settings.get("MEDIAPIPE_MAX_SIZE")
        if max_size is None:
            max_size = settings.getint("DOWNLOAD_MAXSIZE")
        return cls(
            store=_store(_text(get("MEDIAPIPE_STORE"), "MEDIAPIPE_STORE")),
            urls_field=_field(get("MEDIAPIPE_URLS_FIELD"), "MEDIAPIPE_URLS_FIELD"),
            tags_field=_field(get("MEDIAPIPE_TAGS_FIELD"), "MEDIAPIPE_TAGS_FIELD"),
            alt_field=_field(get("MEDIAPIPE_ALT_FIELD"), "MEDIAPIPE_ALT_FIELD"),
            results_field=_optional_field(settings, "MEDIAPIPE_RESULTS_FIELD"),
            media_types=_media_types(get("MEDIAPIPE_MEDIA_TYPES")),
            max_size=_int(max_size, "MEDIAPIPE_MAX_SIZE", minimum=0),
            max_name_bytes=_name_bytes(get("MEDIAPIPE_MAX_NAME_BYTES")),
            url_prefix=_text(get("MEDIAPIPE_URL_PREFIX"), "MEDIAPIPE_URL_PREFIX"),
            add_url=_add_url(get("MEDIAPIPE_ADD_URL")),
            expires_days=_number(get("MEDIAPIPE_EXPIRES"), "MEDIAPIPE_EXPIRES"),
            cache_size=_int(get("MEDIAPIPE_CACHE_SIZE"), "MEDIAPIPE_CACHE_SIZE", minimum=1),
            fsync=_bool(get("MEDIAPIPE_FSYNC"), "MEDIAPIPE_FSYNC"),
            writer_threads=None
            if settings.get("MEDIAPIPE_WRITER_THREADS") is None
            else _int(
                settings.get("MEDIAPIPE_WRITER_THREADS"), "MEDIAPIPE_WRITER_THREADS", minimum=1
            ),
            writer_process=_bool(get("MEDIAPIPE_WRITER_PROCESS"), "MEDIAPIPE_WRITER_PROCESS"),
            freeze_gc=_bool(get("MEDIAPIPE_FREEZE_GC"), "MEDIAPIPE_FREEZE_GC"),
            allow_private_networks=_bool(
                get("MEDIAPIPE_ALLOW_PRIVATE_NETWORKS"), "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS"
            ),
            allowed_hosts=_hosts(get("MEDIAPIPE_ALLOWED_HOSTS")),
            host_profiles=_profiles(get("MEDIAPIPE_HOST_PROFILES")),
            retry_times=_int(get("MEDIAPIPE_RETRY_TIMES"), "MEDIAPIPE_RETRY_TIMES", minimum=0),
            retry_backoff=_number(get("MEDIAPIPE_RETRY_BACKOFF"), "MEDIAPIPE_RETRY_BACKOFF"),
            retry_max_delay=_number(get("MEDIAPIPE_RETRY_MAX_DELAY"), "MEDIAPIPE_RETRY_MAX_DELAY"),
            max_pixels=_int(get("MEDIAPIPE_MAX_PIXELS"), "MEDIAPIPE_MAX_PIXELS", minimum=0),
            deduplicate=_bool(get("MEDIAPIPE_DEDUPLICATE"), "MEDIAPIPE_DEDUPLICATE"),
            min_size=_int(get("MEDIAPIPE_MIN_SIZE"), "MEDIAPIPE_MIN_SIZE", minimum=0),
            min_width=_int(get("MEDIAPIPE_MIN_WIDTH"), "MEDIAPIPE_MIN_WIDTH", minimum=0),
            min_height=_int(get("MEDIAPIPE_MIN_HEIGHT"), "MEDIAPIPE_MIN_HEIGHT", minimum=0),
            thumbs=_thumbs(get("MEDIAPIPE_THUMBS")),
            thumbs_format=_thumbs_format(get("MEDIAPIPE_THUMBS_FORMAT")),
            thumbs_url_prefix=_text(
                get("MEDIAPIPE_THUMBS_URL_PREFIX"), "MEDIAPIPE_THUMBS_URL_PREFIX"
            ),
            thumbs_threads=_int(
                get("MEDIAPIPE_THUMBS_THREADS"), "MEDIAPIPE_THUMBS_THREADS", minimum=1
            ),
            referer_field=_optional_field(settings, "MEDIAPIPE_REFERER_FIELD"),
        )


@dataclass(frozen=True, slots=True)
class ThumbBox:
    """One entry of ``MEDIAPIPE_THUMBS``: a thumbnail fits inside ``width`` x ``height``."""

    name: str
    width: int
    height: int


THUMB_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}
# A thumbnail's name is a folder name of the store and of its URLs.
_THUMB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _thumbs(value: Any) -> tuple[ThumbBox, ...]:
    name = "MEDIAPIPE_THUMBS"
    if isinstance(value, str):
        # -s MEDIAPIPE_THUMBS='{"small": [100, 100]}' on the command line
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise SettingError(
                f'{name} must be a dict such as {{"small": [100, 100]}}, got {value!r}'
            ) from None
    if not isinstance(value, dict):
        raise SettingError(f'{name} must be a dict such as {{"small": [100, 100]}}, got {value!r}')
    boxes = []
    for label, box in value.items():
        if not isinstance(label, str) or not _THUMB_NAME.fullmatch(label):
            raise SettingError(
                f"{name}: {label!r} is not a thumbnail name (letters, digits, _ and -, "
                "starting with a letter or digit)"
            )
        if (
            not isinstance(box, list | tuple)
            or len(box) != 2
            or not all(isinstance(side, int) and not isinstance(side, bool) for side in box)
            or min(box) < 1
        ):
            raise SettingError(
                f"{name}[{label!r}] must be [width, height] in pixels (integers >= 1), got {box!r}"
            )
        boxes.append(ThumbBox(label, box[0], box[1]))
    return tuple(boxes)


def _thumbs_format(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    text = "jpeg" if text == "jpg" else text
    if text not in THUMB_FORMATS:
        raise SettingError(
            f"MEDIAPIPE_THUMBS_FORMAT must be one of {sorted(THUMB_FORMATS)}, got {value!r}"
        )
    return str(text)


def _store(value: str) -> Path | str:
    # A URI stays a str: Path() would fold its "//" into "/".
    from mediapipe.store.registry import store_scheme

    return value if store_scheme(value) else Path(value)


def _text(value: Any, name: str) -> str:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise SettingError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _field(value: Any, name: str) -> str:
    return _text(value, name)


def _optional_field(settings: BaseSettings, name: str) -> str | None:
    # Present-but-None turns the field off; absent means the default.
    if name in settings and settings.get(name) in (None, "", False):
        return None
    return _field(settings.get(name, DEFAULTS[name]), name)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return value.strip().lower() in {"true", "1"}
    raise SettingError(f"{name} must be True or False, got {value!r}")


def _int(value: Any, name: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if (
        isinstance(value, bool)
        or number < minimum
        or (isinstance(value, float) and value != number)
    ):
        raise SettingError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name} must be a number of days >= 0, got {value!r}") from None
    if isinstance(value, bool) or number < 0 or number != number:
        raise SettingError(f"{name} must be a number of days >= 0, got {value!r}")
    return number


def _name_bytes(value: Any) -> int:
    number = _int(value, "MEDIAPIPE_MAX_NAME_BYTES", minimum=MIN_NAME_BYTES)
    if number > _MAX_FILE_NAME_BYTES:
        raise SettingError(
            f"MEDIAPIPE_MAX_NAME_BYTES must be between {MIN_NAME_BYTES} and "
            f"{_MAX_FILE_NAME_BYTES}, got {value!r}"
        )
    return number


def _media_types(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise SettingError(f"MEDIAPIPE_MEDIA_TYPES must be a non-empty list, got {value!r}")
    patterns = []
    for entry in value:
        if not isinstance(entry, str) or entry.strip().count("/") != 1:
            raise SettingError(
                f"MEDIAPIPE_MEDIA_TYPES entries must look like 'image/*' or 'image/png', "
                f"got {entry!r}"
            )
        patterns.append(entry.strip().lower())
    return tuple(patterns)


def _add_url(value: Any) -> bool | str:
    if value == "":
        raise SettingError("MEDIAPIPE_ADD_URL must be True, False or a non-empty query string")
    if isinstance(value, str) and value.strip().lower() not in {"true", "false", "1", "0"}:
        return value
    return _bool(value, "MEDIAPIPE_ADD_URL")


def _hosts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip().startswith("["):
        # -s MEDIAPIPE_ALLOWED_HOSTS='["a.example", "b.example"]' on the command line
        try:
            value = json.loads(value)
        except ValueError:
            raise SettingError(
                f"MEDIAPIPE_ALLOWED_HOSTS must be a list of host names (a JSON list or names "
                f"separated by commas), got {value!r}"
            ) from None
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(host, str) and host.strip() for host in value
    ):
        raise SettingError(f"MEDIAPIPE_ALLOWED_HOSTS must be a list of host names, got {value!r}")
    hosts = tuple(host.strip().lower() for host in value)
    for host in hosts:
        _check_host_entry(host)
    return hosts


# Characters no host name or address literal has: a URL, a port or a path was given.
_NOT_IN_HOSTS = frozenset("/:@?#*[] \t")


def _check_host_entry(host: str) -> None:
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        return
    except ValueError:
        pass
    if not _NOT_IN_HOSTS.intersection(host):
        return
    if "*" in host:
        raise SettingError(
            f"MEDIAPIPE_ALLOWED_HOSTS entries are exact host names; wildcards such as {host!r} "
            "are not supported: list each host"
        )
    try:
        bare = urlsplit(host if "//" in host else "//" + host).hostname or host
    except ValueError:
        bare = host.strip("[]\"'")
    raise SettingError(
        f"MEDIAPIPE_ALLOWED_HOSTS entries are host names or addresses, without scheme, port "
        f"or path (the rule applies to every port of a host): write {bare!r}, not {host!r}"
    )


_PROFILE_KEYS = {"headers", "cookies", "verify_tls"}


def _profiles(value: Any) -> dict[str, HostProfile]:
    name = "MEDIAPIPE_HOST_PROFILES"
    if not isinstance(value, dict):
        raise SettingError(f"{name} must be a dict of host name to profile, got {value!r}")
    profiles = {}
    for host, profile in value.items():
        if not isinstance(host, str) or not isinstance(profile, dict):
            raise SettingError(f"{name}: {host!r} must map a host name to a dict")
        unknown = set(profile) - _PROFILE_KEYS
        if unknown:
            raise SettingError(
                f"{name}[{host!r}]: unknown keys {sorted(unknown)}; "
                f"allowed: {sorted(_PROFILE_KEYS)}"
            )
        headers, cookies = profile.get("headers", {}), profile.get("cookies", {})
        for label, mapping in (("headers", headers), ("cookies", cookies)):
            if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise SettingError(f"{name}[{host!r}][{label!r}] must be a dict of str to str")
        verify = profile.get("verify_tls")
        if verify is not None and not isinstance(verify, bool):
            raise SettingError(f"{name}[{host!r}]['verify_tls'] must be True, False or None")
        profiles[host.lower()] = HostProfile(dict(headers), dict(cookies), verify)
    return profiles
