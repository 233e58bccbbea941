"""GET /readyz: can this process take traffic? (``/healthz`` only says it is alive.)

Four checks, all run on every probe:

- ``storage``: writes are not failing. A write the engine could not make
  (disk full, an I/O error) in the last :data:`FAILING_SECONDS`, with no
  write committed since, makes the probe fail with ``storage_failing``, so a
  balancer drains this node while every purchase would get a 503; the first
  write that commits again (a purchase, the background worker's, or the
  probe's own round trip below, counted apart) makes it ready again. The
  round trip alone cannot tell: an empty transaction needs no free space;

- ``database``: a write-lock round trip (``engine.write_round_trip()``:
  the cross-process lock, ``BEGIN IMMEDIATE``, ``COMMIT``). A database held
  by another writer fails after the engine's busy timeout (5 s): point the
  probe's timeout below that if it must fail faster;
- ``migrations``: the file's ``PRAGMA user_version`` is the engine's schema
  version (a file migrated by a newer release, or restored from an older one,
  is not served blindly);
- ``payos``: the four PayOS settings are all set (real PayOS, or the demo's
  sandbox) or none is (payments off: checkout answers 503); some but not all
  is a broken deployment.

200 ``{"status": "ready", "checks": {...}}``; 503 with the error envelope
(``storage_failing`` when the storage or database check failed, else
``not_ready``), ``failed`` (the names) and the same ``checks``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import falcon
import orjson

from dropsvc._engine import StorageError
from dropsvc.config import Config
from dropsvc.ledger import Engine
from dropsvc.logs import get_logger

PAYOS_SETTINGS = (("payos_base_url", "PAYOS_BASE_URL"), ("payos_client_id", "PAYOS_CLIENT_ID"),
                  ("payos_api_key", "PAYOS_API_KEY"), ("payos_checksum_key", "PAYOS_CHECKSUM_KEY"))
SANDBOX_HOSTS = ("http://127.0.0.1:", "http://localhost:", "http://[::1]:")

FAILING_SECONDS = 5.0  # how long a storage error without a commit after it keeps the node out

log = get_logger()


class StorageWatch:
    """Whether the engine's writes failed lately: a storage error seen, and no commit since.

    Reads the engine's counters (this process's): ``storage_errors`` (purchases
    the storage refused) and ``transactions`` (commits), less the probe's own
    round trips, which commit without needing any space.
    """

    def __init__(self, engine: Engine, window: float = FAILING_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.window = window
        self.clock = clock
        self.own_commits = 0  # the probe's round trips
        self._errors = engine.counters()["storage_errors"]
        self._error_at: float | None = None
        self._commits_at_error = 0

    def check(self) -> dict[str, Any]:
        counters = self.engine.counters()
        commits = counters["transactions"] - self.own_commits
        now = self.clock()
        if counters["storage_errors"] > self._errors:
            self._errors = counters["storage_errors"]
            self._error_at, self._commits_at_error = now, commits
        if self._error_at is None:
            return {"ok": True}
        ago = round(now - self._error_at, 3)
        failing = ago < self.window and commits == self._commits_at_error
        return {"ok": not failing, "last_error_s_ago": ago, "storage_errors": self._errors}


def check_database(engine: Engine) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        engine.write_round_trip()
    except StorageError as error:
        return {"ok": False, "error": type(error).__name__, "detail": str(error)}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 3)}


def check_migrations(engine: Engine) -> dict[str, Any]:
    try:
        found = engine.file_schema_version()
    except StorageError as error:
        return {"ok": False, "error": type(error).__name__, "detail": str(error)}
    expected = engine.schema_version
    return {"ok": found == expected, "file_version": found, "engine_version": expected}


def check_payos(config: Config) -> dict[str, Any]:
    missing = [env for name, env in PAYOS_SETTINGS if not getattr(config, name)]
    if not missing:
        local = (config.payos_base_url or "").startswith(SANDBOX_HOSTS)
        return {"ok": True, "mode": "sandbox" if local else "payos"}
    if len(missing) == len(PAYOS_SETTINGS):
        return {"ok": True, "mode": "off"}
    return {"ok": False, "mode": "incomplete", "missing": missing}


class Ready:
    """GET /readyz (never cached)."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self.engine = engine
        self.config = config
        self.storage = StorageWatch(engine)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {"storage": self.storage.check(), "database": check_database(self.engine)}
        if checks["database"]["ok"]:
            self.storage.own_commits += 1
        checks["migrations"] = check_migrations(self.engine)
        checks["payos"] = check_payos(self.config)
        failed = [name for name, result in checks.items() if not result["ok"]]
        resp.cache_control = ["no-store"]
        if failed:
            code = "storage_failing" if {"storage", "database"} & set(failed) else "not_ready"
            log.warning("not_ready", failed=failed, code=code)
            resp.status = 503
            resp.set_header("Retry-After", "1")
            resp.data = orjson.dumps({
                "error": {"code": code, "message": "not ready: " + ", ".join(failed)},
                "status": "not_ready", "failed": failed, "checks": checks})
        else:
            resp.data = orjson.dumps({"status": "ready", "checks": checks})
