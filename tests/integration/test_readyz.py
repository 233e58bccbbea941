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
    assert set(checks) == {"storage", "database", "migrations", "payos"}
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


def test_failing_writes_make_the_node_not_ready_until_a_write_commits_again(tmp_path):
    """A full database (SQLite's max_page_count, as a full disk): purchases get 503 with Retry-After, never 500;
    /readyz says storage_failing meanwhile; room again, the next purchase commits and /readyz is 200."""
    from falcon import testing

    from dropsvc.config import Config
    from dropsvc.http.app import serving_app

    engine = Engine(tmp_path / "full.db", readers=1)
    try:
        drop_id = engine.create_drop(slug="full", name="Full", price=1, total_stock=100_000, per_user_limit=100)
        client = testing.TestClient(serving_app(engine, Config.load({})))
        assert client.simulate_get("/readyz").status_code == 200
        pages = engine.read("PRAGMA page_count")[0]["page_count"]
        engine.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages}"))  # no room to grow
        statuses = []
        for n in range(400):  # orders fill the last free pages, then the storage refuses
            reply = client.simulate_post(f"/api/drops/{drop_id}/purchases", json={"user_id": f"u{n}"})
            statuses.append(reply.status_code)
            if reply.status_code == 503:
                assert reply.headers["retry-after"] == "1"
                assert reply.json["error"]["code"] == "storage_unavailable"
                break
        assert statuses[-1] == 503 and set(statuses) <= {201, 503}, statuses
        failing = client.simulate_get("/readyz")
        assert failing.status_code == 503 and failing.json["error"]["code"] == "storage_failing"
        assert failing.json["failed"] == ["storage"] and failing.headers["retry-after"] == "1"
        assert client.simulate_get("/readyz").status_code == 503  # its own empty round trips prove nothing
        engine.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))  # room again
        assert client.simulate_post(f"/api/drops/{drop_id}/purchases", json={"user_id": "again"}).status_code == 201
        assert client.simulate_get("/readyz").status_code == 200
        assert engine.check() == []
    finally:
        engine.close()


def test_storage_failing_ends_by_itself_after_the_window():
    from dropsvc.http.resources.readiness import StorageWatch

    class Counters:
        def __init__(self) -> None:
            self.values = {"storage_errors": 0, "transactions": 10}

        def counters(self) -> dict:
            return dict(self.values)

    engine, now = Counters(), [100.0]
    watch = StorageWatch(engine, window=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert watch.check() == {"ok": True}
    engine.values["storage_errors"] = 3
    assert watch.check()["ok"] is False
    now[0] += 4.9
    assert watch.check()["ok"] is False
    now[0] += 0.2  # no new error for the whole window (no traffic either): ready again
    assert watch.check()["ok"] is True
    engine.values["storage_errors"] = 4
    assert watch.check()["ok"] is False
    engine.values["transactions"] = 11  # a write committed after the error
    assert watch.check()["ok"] is True
