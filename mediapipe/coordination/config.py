"""The ``MEDIAPIPE_CLAIMS`` settings, read and checked once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediapipe.settings import DEFAULTS, SettingError, _bool

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

INSTALL_HINT = "pip install 'scrapy-mediapipe[workers]'"
DAY_S = 86400


@dataclass(frozen=True, slots=True)
class ClaimConfig:
    """Where the claims live and how long they hold."""

    redis_url: str
    key_prefix: str  # the spider's name filled in
    lease_s: float
    keep_s: int  # how long a finished source's record stays in redis; 0: for good

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider_name: str) -> ClaimConfig | None:
        """None when ``MEDIAPIPE_CLAIMS`` is off: the crawl works alone, as always."""
        if not _bool(_setting(settings, "MEDIAPIPE_CLAIMS"), "MEDIAPIPE_CLAIMS"):
            return None
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            raise SettingError(f"MEDIAPIPE_CLAIMS = True needs redis: {INSTALL_HINT}") from None
        url = settings.get("MEDIAPIPE_REDIS_URL") or _scrapy_redis_url(settings)
        if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise SettingError(
                f"MEDIAPIPE_REDIS_URL must be a redis:// (or rediss://, unix://) URL, got {url!r}"
            )
        prefix = _setting(settings, "MEDIAPIPE_REDIS_KEY")
        if not isinstance(prefix, str) or not prefix:
            raise SettingError(f"MEDIAPIPE_REDIS_KEY must be a non-empty string, got {prefix!r}")
        try:
            key_prefix = prefix % {"spider": spider_name}
        except (KeyError, ValueError, TypeError):
            raise SettingError(
                f"MEDIAPIPE_REDIS_KEY may hold %(spider)s and nothing else with %, got {prefix!r}"
            ) from None
        lease = _seconds(_setting(settings, "MEDIAPIPE_CLAIM_LEASE"), "MEDIAPIPE_CLAIM_LEASE")
        if lease < 1:
            raise SettingError(f"MEDIAPIPE_CLAIM_LEASE must be at least 1 second, got {lease!r}")
        keep = _seconds(_setting(settings, "MEDIAPIPE_CLAIM_KEEP"), "MEDIAPIPE_CLAIM_KEEP") * DAY_S
        return cls(url, key_prefix, lease, round(keep))


def _setting(settings: BaseSettings, name: str) -> Any:
    value = settings.get(name)
    return DEFAULTS[name] if value is None else value


def _scrapy_redis_url(settings: BaseSettings) -> str:
    """The redis scrapy-redis connects to, from its own settings (the same defaults)."""
    url = settings.get("REDIS_URL")
    if url:
        return str(url)
    host = settings.get("REDIS_HOST") or "localhost"
    port = settings.get("REDIS_PORT") or 6379
    return f"redis://{host}:{port}"


def _seconds(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name} must be a number >= 0, got {value!r}") from None
    if isinstance(value, bool) or not number >= 0 or number == float("inf"):
        raise SettingError(f"{name} must be a number >= 0, got {value!r}")
    return number
