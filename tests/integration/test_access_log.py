"""Access logs over real HTTP: one JSON line per request, no secrets, errors always, sampling and a cap."""

from __future__ import annotations

import json
import time

from live_server import Api, Server

PURCHASES = "/api/drops/{drop_id}/purchases"
FIELDS = {"route", "method", "status", "duration_us", "pid"}


def access_lines(server: Server, event: str = "access") -> list[dict]:
    lines = []
    for text in server.log().splitlines():
        if f'"event":"{event}"' in text:
            line = json.loads(text)
            assert line["event"] == event
            lines.append(line)
    return lines


def wait_for_lines(server: Server, count: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(access_lines(server)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return access_lines(server)


def test_one_line_per_request_with_the_outcome_and_no_secrets(start_server):
    server = start_server(env={"DROPSVC_ACCESS_LOG_MAX_PER_S": "0"})
    api = Api(server)
    drop = api.create_drop(total_stock=1)
    first = api.buy(drop["id"], "alice-secret-user-id-1234")
    ref = first.json["public_ref"]
    assert api.buy(drop["id"], "bob-secret-user-id-5678").status == 409
    assert api.post(f"/api/drops/{drop['id']}/purchases", {"user_id": 5}).status == 422
    assert api.get(f"/api/orders/{ref}").status == 200
    assert api.get("/", headers={"Cookie": "buyer=forged-cookie-value"}).status in (200, 404)
    lines = wait_for_lines(server, 7)
    mine = [line for line in lines if line["fields"]["route"] != "/healthz"]  # launch()'s probes
    assert [(line["fields"]["method"], line["fields"]["route"], line["fields"]["status"]) for line in mine] == [
        ("POST", "/api/admin/drops", 201), ("POST", PURCHASES, 201), ("POST", PURCHASES, 409),
        ("POST", PURCHASES, 422), ("GET", "/api/orders/{public_ref}", 200),
        ("GET", "/", mine[-1]["fields"]["status"])]
    assert [line["fields"].get("outcome") for line in mine[1:4]] == ["ok", "sold_out", "rejected"]
    assert mine[2]["fields"]["error"] == "sold_out" and mine[3]["fields"]["error"] == "invalid_field"
    for line in mine:
        assert set(line["fields"]) - {"outcome", "error"} == FIELDS
        assert line["level"] == "info" and line["fields"]["duration_us"] >= 0
    text = json.dumps(mine)
    for secret in ("alice-secret", "bob-secret", ref, server.admin_token, "forged-cookie-value", str(drop["id"]) + "/"):
        assert secret not in text


def test_errors_are_logged_even_when_ordinary_requests_are_sampled_out(start_server):
    server = start_server(env={"DROPSVC_ACCESS_LOG_SAMPLE": "0"})
    api = Api(server)
    drop = api.create_drop(total_stock=1)
    assert api.buy(drop["id"], "a").status == 201
    assert api.buy(drop["id"], "b").status == 409  # expected: sampled like a success
    assert api.get("/api/drops/999999999").status == 404
    assert api.request("DELETE", "/api/drops").status == 405
    assert api.post("/api/admin/drops", {"slug": "x"}, {"Authorization": "Bearer wrong"}).status == 401
    lines = wait_for_lines(server, 3)
    assert [(line["fields"]["route"], line["fields"]["status"]) for line in lines] == [
        ("/api/drops/{drop_id}", 404), ("/api/drops", 405), ("/api/admin/drops", 401)]
    assert lines[0]["fields"]["error"] == "drop_not_found"


def test_the_cap_per_second_and_what_it_suppressed(start_server):
    server = start_server(env={"DROPSVC_ACCESS_LOG_MAX_PER_S": "5"})
    api = Api(server)
    time.sleep(1.1)  # past the second of launch()'s probe
    started = time.monotonic()
    for _ in range(40):
        assert api.get("/api/drops").status == 200
    spent = time.monotonic() - started
    time.sleep(1.1)
    assert api.get("/api/drops").status == 200  # opens a new second: says what the last one dropped
    drops = [line for line in wait_for_lines(server, 6) if line["fields"]["route"] == "/api/drops"]
    windows = int(spent) + 2
    assert 6 <= len(drops) <= 5 * windows + 1
    suppressed = access_lines(server, "access_log_suppressed")
    assert suppressed and suppressed[0]["fields"]["max_per_s"] == 5
    assert sum(line["fields"]["lines"] for line in suppressed) == 41 - len(drops)


def test_log_level_warning_keeps_only_server_errors(start_server):
    server = start_server(extra_args=("--log-level", "WARNING"))
    api = Api(server)
    drop = api.create_drop(total_stock=1)
    assert api.buy(drop["id"], "a").status == 201
    assert api.get("/api/drops/999999999").status == 404
    assert api.get("/readyz").status == 200
    assert access_lines(server) == []
