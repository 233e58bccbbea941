"""A queue drop's line over real HTTP: joined and checked in through the routes, closed and admitted
by the server's background worker, one ticket bought, and ``dropsvc verify-fairness URL`` on it."""

from __future__ import annotations

import json
import time

from live_server import Reply, exchange, run_cli
from prometheus_client.parser import text_string_to_metric_families

from dropsvc import Engine
from dropsvc.buyers import COOKIE_NAME, Buyers

BUYERS = 4
WAIT_S = 20.0


def test_verify_fairness_over_http_on_a_closed_and_admitted_line(start_server):
    server = start_server()
    with Engine(server.db_path, readers=1) as engine:  # the admin API refuses the admission fields yet
        starts_at = time.time_ns() // 1_000_000 + 3000
        drop_id = engine.create_drop(slug="line", name="Line", price=1000, total_stock=2, per_user_limit=1,
                                     admission="queue", admit_seconds=60, starts_at=starts_at)
        buyers = Buyers(engine.secret("buyer_cookie_key"))
        cookies = [{"Cookie": f"{COOKIE_NAME}={buyers.new_cookie()[1]}"} for _ in range(BUYERS)]
    conn = server.connect()

    def call(method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Reply:
        return exchange(conn, method, f"/api/drops/{drop_id}{path}", body, headers)

    tickets = []
    for cookie in cookies:
        joined = call("POST", "/tickets", {"Content-Type": "application/json", **cookie}, b"{}")
        assert joined.status == 201, joined.body
        assert call("GET", f"/tickets/{joined.json['ticket_id']}", cookie).status == 200  # check in
        tickets.append(joined.json)
    assert call("GET", "/fairness/tickets", {}).status == 409
    deadline = time.monotonic() + WAIT_S
    while (document := call("GET", "/queue", {}).json)["admitted_through"] == 0:
        assert time.monotonic() < deadline, f"the worker did not admit: {document}\n{server.log()}"
        time.sleep(0.2)
    assert document["seed"] is not None and document["state"] == "admitting"
    first, cookie = next((ticket, cookie) for ticket, cookie in zip(tickets, cookies, strict=True)
                         if call("GET", f"/tickets/{ticket['ticket_id']}", cookie).json["state"] == "admitted")
    bought = call("POST", "/purchases", {"Content-Type": "application/json", "Admission-Ticket": first["token"],
                                         **cookie}, json.dumps({"quantity": 1}).encode())
    assert bought.status == 201, bought.body
    assert_queue_gauges(exchange(conn, "GET", "/metrics").body.decode(), drop_id)
    conn.close()
    url = f"{server.base_url}/api/drops/{drop_id}/fairness"
    verified = run_cli("verify-fairness", url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"ok: {BUYERS} tickets" in verified.stdout
    broken = run_cli("verify-fairness", f"{server.base_url}/api/drops/{drop_id + 1}/fairness")
    assert broken.returncode == 2


def assert_queue_gauges(text: str, drop_id: int) -> None:
    """The line's gauges at scrape time: its tickets by state (one used), admissions, not paused, its state."""
    samples = {(sample.name, sample.labels.get("state")): sample.value
               for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.labels.get("drop_id") == str(drop_id)}
    assert sum(value for (name, _), value in samples.items() if name == "dropsvc_queue_tickets") == BUYERS
    assert samples[("dropsvc_queue_tickets", "used")] == 1
    assert samples[("dropsvc_queue_state", "admitting")] == 1 and samples[("dropsvc_queue_state", "sold_out")] == 0
    assert samples[("dropsvc_queue_admitted_through", None)] >= 1
    assert samples[("dropsvc_queue_admissions", None)] >= 1 and samples[("dropsvc_queue_paused", None)] == 0
