"""Configuration (SPEC 10): environment variables, overridden by CLI flags.

``Config.load(os.environ, port="9000")`` reads every setting once and checks it;
a bad value raises ``ConfigError`` with a one-line message naming the variable
(or the flag, when the value came from one). An empty variable counts as unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SERVERS = ("bjoern", "meinheld", "granian")
# the fastest on purchases per durability mode, as bench/http.py measures it: bjoern's one loop
# in NORMAL; in FULL granian's threads, whose concurrent purchases share one fsync (group commit)
DEFAULT_SERVER = {"NORMAL": "bjoern", "FULL": "granian"}
MAX_WORKERS = 64
MAX_READERS = 64
MAX_THREADS = 256
MAX_ACCESS_LINES = 1_000_000
ORDER_PAGE = "{public_url}/orders/{{public_ref}}"  # PayOS return/cancel default: the order page
REPLICA_SCHEMES = ("file", "s3", "gs", "abs", "sftp", "webdav", "webdavs", "nats", "oss")  # Litestream's
DEFAULT_SYNC_INTERVAL = 1.0  # seconds between Litestream's WAL shipments
MIN_SYNC_INTERVAL, MAX_SYNC_INTERVAL = 0.05, 3600.0
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


class ConfigError(ValueError):
    """A setting that cannot be used; the message is one line naming it."""


def _shown(raw: str) -> str:
    """The offending value for a message: quoted, cut short."""
    return repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "..."


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name} must not be empty")
    if not raw.isprintable():
        raise ConfigError(f"{name} must be one line of printable text")
    return raw


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        text = raw.strip()
        valid = text.isascii() and text.isdigit() and len(text) <= len(str(high))
        if not valid or not low <= int(text) <= high:
            raise ConfigError(f"{name} must be an integer from {low} to {high}, got {_shown(raw)}")
        return int(text)
    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        wanted = raw.strip().lower()
        for option in options:
            if option.lower() == wanted:
                return option
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {_shown(raw)}")
    return parse


def _url(name: str, raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://") or " " in url:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {_shown(raw)}")
    return url


def _fraction(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ConfigError(f"{name} must be a number from 0 to 1, got {_shown(raw)}")
    return value


def _secret(name: str, raw: str) -> str:
    # sent in headers: visible ASCII only; never echo the value itself
    if not (raw.isascii() and raw.isprintable()) or " " in raw:
        raise ConfigError(f"{name} must be printable ASCII without spaces")
    return raw


def _duration(name: str, raw: str) -> float:
    """Seconds from ``250ms``, ``1s``, ``1.5``, ``2m``."""
    match = DURATION.match(raw)
    if match:
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
        seconds = float(match.group(1)) * scale
        if MIN_SYNC_INTERVAL <= seconds <= MAX_SYNC_INTERVAL:
            return seconds
    raise ConfigError(f"{name} must be a duration from 50ms to 60m (e.g. 250ms, 1s), got {_shown(raw)}")


def _replica_url(name: str, raw: str) -> str:
    url = raw.strip()
    scheme, sep, rest = url.partition("://")
    if (not sep or scheme.lower() not in REPLICA_SCHEMES or not rest.strip("/") or " " in url
            or not url.isprintable()):
        raise ConfigError(f"{name} must be a Litestream replica URL "
                          f"({', '.join(s + '://' for s in REPLICA_SCHEMES[:3])}...), got {_shown(raw)}")
    return url


@dataclass(frozen=True)
class Setting:
    """Where one Config field comes from and how its text is checked."""

    env: str
    parse: Callable[[str, str], Any]
    default: Any = None


SETTINGS: dict[str, Setting] = {
    "db": Setting("DROPSVC_DB", _text, "./dropsvc.db"),
    "host": Setting("DROPSVC_HOST", _text, "127.0.0.1"),
    "port": Setting("DROPSVC_PORT", _integer(1, 65535), 8000),
    "workers": Setting("DROPSVC_WORKERS", _integer(1, MAX_WORKERS), 1),
    "server": Setting("DROPSVC_SERVER", _choice(SERVERS)),  # default: DEFAULT_SERVER by durability
    "synchronous": Setting("DROPSVC_SYNCHRONOUS", _choice(SYNCHRONOUS_MODES), "NORMAL"),
    "readers": Setting("DROPSVC_READERS", _integer(1, MAX_READERS), 4),
    "threads": Setting("DROPSVC_THREADS", _integer(1, MAX_THREADS), 16),
    "admin_token": Setting("DROPSVC_ADMIN_TOKEN", _secret),
    "public_url": Setting("DROPSVC_PUBLIC_URL", _url),
    "log_level": Setting("DROPSVC_LOG_LEVEL", _choice(LOG_LEVELS), "INFO"),
    "static_dir": Setting("DROPSVC_STATIC_DIR", _text),
    "access_log_sample": Setting("DROPSVC_ACCESS_LOG_SAMPLE", _fraction, 1.0),
    "access_log_max_per_s": Setting("DROPSVC_ACCESS_LOG_MAX_PER_S", _integer(0, MAX_ACCESS_LINES), 100),
    "replicate": Setting("DROPSVC_REPLICATE", _replica_url),
    "replicate_sync_interval": Setting("DROPSVC_REPLICATE_SYNC_INTERVAL", _duration, DEFAULT_SYNC_INTERVAL),
    "payos_base_url": Setting("PAYOS_BASE_URL", _url),
    "payos_client_id": Setting("PAYOS_CLIENT_ID", _text),
    "payos_api_key": Setting("PAYOS_API_KEY", _secret),
    "payos_checksum_key": Setting("PAYOS_CHECKSUM_KEY", _secret),
    "payos_return_url": Setting("PAYOS_RETURN_URL", _url),
    "payos_cancel_url": Setting("PAYOS_CANCEL_URL", _url),
}


@dataclass(frozen=True)
class Config:
    """Everything the service reads at start. Secrets stay out of repr()."""

    db: str = "./dropsvc.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    server: str = "bjoern"
    synchronous: str = "NORMAL"
    readers: int = 4
    threads: int = 16  # granian's blocking threads per worker (bjoern and meinheld are single-threaded)
    admin_token: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    static_dir: str | None = None  # the page's files; default: static/ beside the package (a checkout)
    access_log_sample: float = 1.0  # fraction of ordinary requests logged (errors always are)
    access_log_max_per_s: int = 100  # ordinary access lines per second and process, 0 = no cap
    replicate: str | None = None  # a Litestream replica URL: `dropsvc serve` runs Litestream beside it
    replicate_sync_interval: float = DEFAULT_SYNC_INTERVAL  # seconds
    payos_base_url: str | None = None
    payos_client_id: str | None = None
    payos_api_key: str | None = field(default=None, repr=False)
    payos_checksum_key: str | None = field(default=None, repr=False)
    payos_return_url: str = "http://127.0.0.1:8000/orders/{public_ref}"
    payos_cancel_url: str = "http://127.0.0.1:8000/orders/{public_ref}"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read ``env`` (default ``os.environ``); keyword overrides (CLI flags, None = not given) win."""
        env = os.environ if env is None else env
        unknown = set(overrides) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown config override {sorted(unknown)[0]!r}")
        values: dict[str, Any] = {}
        for name, setting in SETTINGS.items():
            given = overrides.get(name)
            if given is not None:
                values[name] = setting.parse("--" + name.replace("_", "-"), str(given))
            elif env.get(setting.env):
                values[name] = setting.parse(setting.env, env[setting.env])
            else:
                values[name] = setting.default
        if values["server"] is None:
            values["server"] = DEFAULT_SERVER[values["synchronous"]]
        if values["public_url"] is None:
            values["public_url"] = f"http://{values['host']}:{values['port']}"
        order_page = ORDER_PAGE.format(public_url=values["public_url"])
        values["payos_return_url"] = values["payos_return_url"] or order_page
        values["payos_cancel_url"] = values["payos_cancel_url"] or order_page
        return cls(**values)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never reach a log line."""
        return tuple(value for value in (self.admin_token, self.payos_api_key, self.payos_checksum_key)
                     if value)

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for worker processes that load their own Config."""
        return {setting.env: str(getattr(self, name)) for name, setting in SETTINGS.items()
                if getattr(self, name) is not None}

    def describe(self) -> dict[str, Any]:
        """The settings as a dict for logs, secrets replaced by whether they are set."""
        shown: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            shown[item.name] = value if item.repr else value is not None
        return shown
