"""``dropsvc serve``: the demo drop, health, logs, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import time

import pytest
from live_server import Api

from dropsvc import Engine


def demo_drops(server) -> list[dict]:
    client = Api(server)
    drops = client.get("/api/drops").json["drops"]
    client.close()
    return [drop for drop in drops if drop["slug"] == "demo-sneaker"]


def test_demo_serves_the_demo_drop(start_server):
    server = start_server(demo=True)
    [drop] = demo_drops(server)
    assert (drop["total_stock"], drop["price"], drop["per_user_limit"]) == (100, 2_500_000, 2)
    assert (drop["currency"], drop["status"], drop["remaining"]) == ("VND", "live", 100)

    client = Api(server)
    assert client.buy(drop["id"], "demo-shopper", 2).status == 201
    client.close()

    # a restart on the same file seeds nothing twice and keeps the sale
    assert server.stop() == 0
    again = start_server(demo=True, db_path=server.db_path)
    [same] = demo_drops(again)
    assert (same["id"], same["sold"]) == (drop["id"], 2)


def test_without_demo_there_is_no_drop(start_server):
    server = start_server()
    assert Api(server).get("/api/drops").json == {"drops": []}


def test_healthz(service):
    reply = Api(service).get("/healthz")
    assert (reply.status, reply.json) == (200, {"status": "ok"})
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_cleanly_and_closes_the_engine(start_server, signum):
    server = start_server()
    client = Api(server)
    drop = client.create_drop(total_stock=1)
    assert client.buy(drop["id"], "last-one").status == 201  # keep-alive connection still open
    started = time.monotonic()
    assert server.stop(signum) == 0
    assert time.monotonic() - started < 3, "an idle keep-alive client held the server up"
    events = [json.loads(line)["event"] for line in server.log().splitlines() if line.startswith("{")]
    assert events[0] == "starting" and "listening" in events
    assert events[-2:] == ["stopped", "engine_closed"]
    client.close()
    with Engine(server.db_path, readers=1) as engine:
        assert engine.check() == []
        assert engine.get_drop(drop["id"])["sold"] == 1


def test_log_lines_are_json_objects(service, api):
    api.create_drop()
    lines = [line for line in service.log().splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "event", "fields"} <= set(record)
        assert record["ts"].endswith("Z") and isinstance(record["fields"], dict)
