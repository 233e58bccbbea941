"""GET /readyz: database writable, migrations current, PayOS config complete or absent."""

from __future__ import annotations

import sqlite3
import time

from live_server import Api

from dropsvc import Engine


def test_ready_with_every_check(api):
    reply = api.get("/readyz")
    assert reply.status == 200, reply.body
    body = reply.json
    assert body["status"] == "ready" and "failed" not in body and "error" not in body
    checks = body["checks"]
    assert set(checks) == {"database", "migrations", "payos"}
    assert all(check["ok"] is True for check in checks.values())
    assert checks["migrations"]["file_version"] == checks["migrations"]["engine_version"] >= 1
    assert checks["payos"]["mode"] == "off"  # the shared service runs without PayOS
    assert reply.headers["cache-control"] == "no-store"
    assert api.get("/healthz").json == {"status": "ok"}


def test_the_demo_sandbox_counts_as_configured(start_server):
    client = Api(start_server(demo=True))
    reply = client.get("/readyz")
    assert reply.status == 200 and reply.json["checks"]["payos"] == {"ok": True, "mode": "sandbox"}
    client.close()


def test_incomplete_payos_config_is_not_ready(start_server):
    server = start_server(env={"PAYOS_CHECKSUM_KEY": "only-the-checksum-key", "PAYOS_CLIENT_ID": "cid"})
    client = Api(server)
    reply = client.get("/readyz")
    assert reply.status == 503
    body = reply.json
    assert body["error"]["code"] == "not_ready" and body["failed"] == ["payos"]
    assert body["checks"]["payos"] == {"ok": False, "mode": "incomplete",
                                       "missing": ["PAYOS_BASE_URL", "PAYOS_API_KEY"]}
    assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]
    assert reply.headers["retry-after"] == "1"
    assert "only-the-checksum-key" not in reply.body.decode() and "only-the-checksum-key" not in server.log()
    assert client.get("/healthz").status == 200  # alive all the same
    client.close()


def test_a_file_from_another_schema_version_is_not_ready(start_server):
    server = start_server()
    client = Api(server)
    with Engine(server.db_path) as engine:
        current = engine.schema_version
    with sqlite3.connect(server.db_path) as db:
        db.execute(f"PRAGMA user_version = {current + 1}")
    reply = client.get("/readyz")
    assert reply.status == 503 and reply.json["failed"] == ["migrations"]
    assert reply.json["checks"]["migrations"] == {"ok": False, "file_version": current + 1,
                                                  "engine_version": current}
    with sqlite3.connect(server.db_path) as db:
        db.execute(f"PRAGMA user_version = {current}")
    assert client.get("/readyz").status == 200
    client.close()


def test_a_database_another_writer_holds_is_not_ready(start_server):
    server = start_server()
    client = Api(server)
    holder = sqlite3.connect(server.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the SQLite write lock, outside the engine's own lock
    try:
        started = time.monotonic()
        reply = client.get("/readyz")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert reply.status == 503 and reply.json["failed"] == ["database"], reply.body
    assert reply.json["checks"]["database"]["error"] == "BusyError"
    assert waited < 15
    assert client.get("/readyz").status == 200
    client.close()
