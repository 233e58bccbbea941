"""GET /readyz: can this process take traffic? (``/healthz`` only says it is alive.)

Three checks, all run on every probe:

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
(``not_ready``), ``failed`` (the names) and the same ``checks``.
"""

from __future__ import annotations

import time
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

log = get_logger()


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

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = {"database": check_database(self.engine), "migrations": check_migrations(self.engine),
                  "payos": check_payos(self.config)}
        failed = [name for name, result in checks.items() if not result["ok"]]
        resp.cache_control = ["no-store"]
        if failed:
            log.warning("not_ready", failed=failed)
            resp.status = 503
            resp.set_header("Retry-After", "1")
            resp.data = orjson.dumps({
                "error": {"code": "not_ready", "message": "not ready: " + ", ".join(failed)},
                "status": "not_ready", "failed": failed, "checks": checks})
        else:
            resp.data = orjson.dumps({"status": "ready", "checks": checks})
