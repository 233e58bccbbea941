"""A draw over real HTTP: made through the admin API, entered through the routes (refused before its
start and after its close), drawn by the server's background worker within 1 s of entries_close_at,
its winners buying and the waitlist refused, and ``dropsvc verify-fairness URL`` on it."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

from live_server import Api, run_cli

from dropsvc import Engine
from dropsvc.buyers import COOKIE_NAME

ENTRANTS = 5
STOCK = 2
WAIT_S = 20.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sleep_until(at_ms: int) -> None:
    time.sleep(max(0.0, (at_ms - now_ms()) / 1000))


def test_a_draw_over_http_entries_the_draw_at_the_close_winners_and_waitlist(start_server):
    server = start_server()
    api = Api(server)
    starts_at = now_ms() + 1500
    drop = api.create_drop(total_stock=STOCK, admission="draw", starts_at=starts_at, entries_close_at=starts_at + 2500)
    path = f"/api/drops/{drop['id']}"
    cookies = [{"Cookie": f"{COOKIE_NAME}={SimpleCookie(api.get('/').headers['set-cookie'])[COOKIE_NAME].value}"}
               for _ in range(ENTRANTS + 1)]

    early = api.post(f"{path}/tickets", {}, cookies[0])
    assert (early.status, early.error_code) == (409, "entries_not_open"), early.body
    assert api.get(f"{path}/queue").json["state"] == "upcoming"
    sleep_until(starts_at)
    entries = []
    for cookie in cookies[:ENTRANTS]:
        entered = api.post(f"{path}/tickets", {}, cookie)
        assert (entered.status, entered.json["kind"], entered.json["position"]) == (201, "entry", None), entered.body
        entries.append(entered.json)
    document = api.get(f"{path}/queue").json
    assert (document["state"], document["waiting"], document["seed"]) == ("entries_open", ENTRANTS, None)
    assert api.get(path).json["status"] == "upcoming"
    too_soon = api.post(f"{path}/purchases", {"quantity": 1}, {"Admission-Ticket": entries[0]["token"], **cookies[0]})
    assert (too_soon.status, too_soon.error_code) == (409, "not_started"), too_soon.body

    deadline = time.monotonic() + WAIT_S
    while (document := api.get(f"{path}/queue").json)["admitted_through"] == 0:
        assert time.monotonic() < deadline, f"the worker did not draw: {document}\n{server.log()}"
        time.sleep(0.1)
    assert (document["state"], document["admitted_through"], document["waiting"]) == (
        "admitting", STOCK, ENTRANTS - STOCK)
    with Engine(server.db_path, readers=1) as engine:
        closed_at = engine.read("SELECT closed_at FROM queue_closes WHERE drop_id = ?", (drop["id"],))[0]["closed_at"]
    assert 0 <= closed_at - drop["entries_close_at"] < 1000, closed_at - drop["entries_close_at"]
    assert api.get(path).json["status"] == "live"
    late = api.post(f"{path}/tickets", {}, cookies[ENTRANTS])
    assert (late.status, late.error_code) == (409, "queue_closed") and "draw" in late.json["error"]["message"]

    views = [api.get(f"{path}/tickets/{entry['ticket_id']}", cookie).json
             for entry, cookie in zip(entries, cookies, strict=False)]
    winners = [(view, cookie) for view, cookie in zip(views, cookies, strict=False) if view["state"] == "admitted"]
    assert sorted(view["position"] for view, _ in winners) == list(range(1, STOCK + 1))
    assert all(view["admitted_until"] - closed_at == 3600 * 1000 for view, _ in winners)
    assert sorted(view["ahead"] for view in views if view["state"] == "waiting") == list(range(ENTRANTS - STOCK))
    for view, cookie in winners:
        bought = api.post(f"{path}/purchases", {"quantity": 1}, {"Admission-Ticket": view["token"], **cookie})
        assert bought.status == 201, bought.body
    loser, cookie = next((view, cookie) for view, cookie in zip(views, cookies, strict=False)
                         if view["state"] == "waiting")
    refused = api.post(f"{path}/purchases", {"quantity": 1}, {"Admission-Ticket": loser["token"], **cookie})
    assert (refused.status, refused.error_code) == (409, "sold_out"), refused.body  # every unit held
    api.close()

    verified = run_cli("verify-fairness", f"{server.base_url}{path}/fairness")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"ok: {ENTRANTS} tickets" in verified.stdout
