"""The purchase fast path answers exactly as the Falcon resource does, and records the same metrics.

Two apps on two engines made alike: ``create_app`` (Falcon only) and
``serving_app`` (what the servers run: the fast path in front). Every request
is sent to both; status, headers and body must match byte for byte, except
the parts of a new order that differ between two databases (ids, refs).
"""

from __future__ import annotations

import json
import time

import pytest
from falcon import testing

from dropsvc import Engine
from dropsvc.buyers import COOKIE_NAME, USER_ID_PREFIX, Buyers
from dropsvc.config import Config
from dropsvc.http.app import create_app, serving_app
from dropsvc.http.fast_path import FastPath
from dropsvc.http.resources.purchases import TICKET_REFUSALS
from dropsvc.ledger import TICKET_STATES
from dropsvc.tickets import TicketTokens

DROP = {"slug": "pair", "name": "Pair", "price": 100_000, "total_stock": 2, "per_user_limit": 1}


class FalconCalls:
    """The fast path's Falcon app, counting the requests handed to it."""

    def __init__(self, app) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.app(environ, start_response)


def falcon_calls(both) -> int:
    return both[1].app.app.calls


def clients(engines: list[Engine]) -> tuple[testing.TestClient, testing.TestClient, list[Engine]]:
    """Falcon alone on the first engine, the fast path in front of Falcon on the second."""
    falcon_app = create_app(engines[0], Config.load({}))
    fast_app = serving_app(engines[1], Config.load({}))
    assert isinstance(fast_app, FastPath)
    fast_app.app = FalconCalls(fast_app.app)
    return testing.TestClient(falcon_app), testing.TestClient(fast_app), engines


@pytest.fixture
def both(tmp_path):
    engines = [Engine(tmp_path / f"{name}.db", readers=1) for name in ("falcon", "fast")]
    for engine in engines:
        engine.create_drop(**DROP)
        engine.create_drop(**dict(DROP, slug="gone", total_stock=1))
        engine.purchase(2, "first-buyer")  # drop 2 is sold out
    yield clients(engines)
    for engine in engines:
        engine.close()


def same_answer(both, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
                method: str = "POST", query: str | None = None):
    falcon_client, fast_client, _ = both
    headers = {"Content-Type": "application/json", **(headers or {})}
    replies = [client.simulate_request(method, path, body=body, headers=headers, query_string=query)
               for client in (falcon_client, fast_client)]
    expected, got = replies
    assert got.status == expected.status
    assert sorted(got.headers) == sorted(expected.headers)
    if expected.status_code in (200, 201) and method == "POST":  # an order: its ids differ between the files
        assert got.json.keys() == expected.json.keys()
        if expected.status_code == 201:
            assert got.headers["location"] == "/api/orders/" + got.json["public_ref"]
    else:
        assert got.content == expected.content
        for name, value in expected.headers.items():
            assert got.headers[name] == value
    return got


def buy(user_id: str = "ann", quantity: object = 1) -> bytes:
    return json.dumps({"user_id": user_id, "quantity": quantity}).encode()


def test_new_orders_and_refusals_match(both):
    assert same_answer(both, "/api/drops/1/purchases", body=buy("ann")).status_code == 201
    assert same_answer(both, "/api/drops/1/purchases", body=buy("ann")).json["error"]["code"] == "per_user_limit"
    assert same_answer(both, "/api/drops/2/purchases", body=buy("bob")).json["error"]["code"] == "sold_out"
    assert same_answer(both, "/api/drops/9/purchases", body=buy("bob")).status_code == 404
    assert same_answer(both, "/api/drops/1/purchases", body=buy("cy", 2)).json["error"]["code"] == "per_user_limit"
    assert falcon_calls(both) == 0  # all well-formed: answered by the fast path itself


def test_idempotent_replay_matches(both):
    first = same_answer(both, "/api/drops/1/purchases", body=buy("dee"), headers={"Idempotency-Key": "k-1"})
    again = same_answer(both, "/api/drops/1/purchases", body=buy("dee"), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200 and again.json == first.json
    conflict = same_answer(both, "/api/drops/1/purchases", body=buy("eve"), headers={"Idempotency-Key": "k-1"})
    assert conflict.status_code == 422 and falcon_calls(both) == 0


@pytest.mark.parametrize("path, body, headers, query", [
    ("/api/drops/1/purchases", buy("fay", 0), {}, None),
    ("/api/drops/1/purchases", b'{"user_id": "fay", "colour": "red"}', {}, None),
    ("/api/drops/1/purchases", b'{"quantity": 1}', {}, None),
    ("/api/drops/1/purchases", b'{"user_id": "fay"', {}, None),
    ("/api/drops/1/purchases", b"[1, 2]", {}, None),
    ("/api/drops/1/purchases", b"", {}, None),
    ("/api/drops/1/purchases", b"x" * 5000, {}, None),
    ("/api/drops/1/purchases", buy("fay"), {"Content-Type": "text/plain"}, None),
    ("/api/drops/1/purchases", buy("fay"), {"Idempotency-Key": "caf\u00e9"}, None),
    ("/api/drops/1/purchases", buy("fay"), {"Idempotency-Key": "k" * 200}, None),
    ("/api/drops/0/purchases", buy("fay"), {}, None),
    ("/api/drops/x1/purchases", buy("fay"), {}, None),
    ("/api/drops/99999999999999999999/purchases", buy("fay"), {}, None),
    ("/api/drops//purchases", buy("fay"), {}, None),
    ("/api/drops/1/purchases", buy("gil"), {}, "a=1"),
])
def test_every_refusal_is_falcons(both, path, body, headers, query):
    reply = same_answer(both, path, body=body, headers=headers, query=query)
    assert reply.status_code >= 400 or query  # a query string goes to Falcon, which buys the same way
    assert falcon_calls(both) == 1


def test_other_methods_are_falcons(both):
    assert same_answer(both, "/api/drops/1/purchases", method="GET").status_code == 405
    assert both[1].simulate_get("/api/drops/1").status_code == 200
    assert falcon_calls(both) == 2


def test_the_cookie_buyer_wins(both):
    falcon_client, fast_client, engines = both
    for client, engine in zip((falcon_client, fast_client), engines, strict=True):
        buyers = Buyers(engine.secret("buyer_cookie_key"))
        buyer_id, value = buyers.new_cookie()
        reply = client.simulate_post("/api/drops/1/purchases", body=buy("anyone"),
                                     headers={"Content-Type": "application/json",
                                              "Cookie": f"{COOKIE_NAME}={value}"})
        assert reply.status_code == 201 and reply.json["quantity"] == 1
        [order] = engine.read("SELECT user_id FROM orders WHERE user_id LIKE 'buyer-%'")
        assert order["user_id"] == "buyer-" + buyer_id


def test_a_storage_failure_is_the_same_503_and_runs_the_purchase_once(both):
    for engine in both[2]:
        engine.close()
    reply = same_answer(both, "/api/drops/1/purchases", body=buy("hal"))
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert reply.json["error"]["code"] == "storage_unavailable"
    assert falcon_calls(both) == 0  # answered by the fast path: Falcon did not run the purchase again


def test_fast_answers_are_counted(both):
    _, fast_client, _ = both
    fast_client.simulate_post("/api/drops/2/purchases", body=buy("ivy"), headers={"Content-Type": "application/json"})
    fast_client.simulate_post("/api/drops/1/purchases", body=buy("jo"), headers={"Content-Type": "application/json"})
    text = fast_client.simulate_get("/metrics").text
    for status in ("409", "201"):
        line = next(line for line in text.splitlines() if line.startswith("dropsvc_http_requests_total{")
                    and 'route="/api/drops/{drop_id}/purchases"' in line and f'status="{status}"' in line)
        assert line.endswith(" 1") or line.endswith(" 1.0"), line


# -- a line's drop (SPEC 11): the buyer cookie, Admission-Ticket, not_admitted ---------------

LINE, OPEN, OTHER_LINE = 1, 2, 3
ANN, BOB = "a" * 32, "b" * 32


class Line:
    """Twin engines (one file copied, so one set of keys) with a queue drop, an open drop and another queue drop."""

    def __init__(self, tmp_path) -> None:
        first = Engine(tmp_path / "falcon.db", readers=1)
        first.backup(tmp_path / "fast.db")
        self.engines = [first, Engine(tmp_path / "fast.db", readers=1)]
        live = {"price": 100_000, "total_stock": 5, "per_user_limit": 2, "starts_at": time.time_ns() // 10**6 - 60_000}
        for engine in self.engines:
            engine.create_drop(slug="line", name="Line", admission="queue", **live)
            engine.create_drop(slug="open", name="Open", **live)
            engine.create_drop(slug="other-line", name="Other line", admission="queue", **live)
        self.buyers = Buyers(first.secret("buyer_cookie_key"))
        self.tokens = TicketTokens(first.secret("ticket_token_key"))

    def join(self, drop_id: int, buyer_id: str) -> str:
        """The buyer's ticket on both engines (the same number on each); its token."""
        joined = {engine.join_line(drop_id, USER_ID_PREFIX + buyer_id)[1]["ticket_id"] for engine in self.engines}
        [ticket_id] = joined
        return self.tokens.sign(drop_id, ticket_id, buyer_id)

    def admit(self, drop_id: int, buyer_id: str) -> None:
        until = time.time_ns() // 10**6 + 60_000
        for engine in self.engines:
            engine.write(lambda tx: tx.execute("UPDATE tickets SET state = 'admitted', admitted_until = ?"
                                               " WHERE drop_id = ? AND buyer = ?",
                                               (until, drop_id, USER_ID_PREFIX + buyer_id)))

    def states(self, drop_id: int, buyer_id: str) -> set[str]:
        return {engine.buyer_ticket(drop_id, USER_ID_PREFIX + buyer_id)["state"] for engine in self.engines}

    def headers(self, buyer_id: str | None, token: str | None = None, **more: str) -> dict[str, str]:
        headers = dict(more)
        if buyer_id is not None:
            headers["Cookie"] = f"{COOKIE_NAME}={self.buyers.sign(buyer_id)}"
        if token is not None:
            headers["Admission-Ticket"] = token
        return headers


@pytest.fixture
def line(tmp_path):
    made = Line(tmp_path)
    yield made, clients(made.engines)
    for engine in made.engines:
        assert engine.check() == [], "the stock invariant broke"
        engine.close()


def not_admitted_body(state: str) -> dict:
    return {"error": {"code": "not_admitted", "message": TICKET_REFUSALS[state], "ticket_state": state}}


def test_every_ticket_state_but_admitted_has_its_refusal():
    assert set(TICKET_REFUSALS) == {"missing", "invalid", "other_buyer"} | set(TICKET_STATES) - {"admitted"}


def test_a_line_drop_needs_the_buyer_cookie(line):
    made, apps = line
    made.join(LINE, ANN)
    for body in (buy("ann"), b'{"quantity": 1}', b'{"user_id": 7}'):
        reply = same_answer(apps, f"/api/drops/{LINE}/purchases", body=body, headers={"Admission-Ticket": "x"})
        assert reply.status_code == 409 and reply.json["error"]["code"] == "buyer_required"
    forged_cookie = {"Cookie": f"{COOKIE_NAME}={ANN}.{'0' * 64}"}
    assert same_answer(apps, f"/api/drops/{LINE}/purchases", body=buy("ann"),
                       headers=forged_cookie).json["error"]["code"] == "buyer_required"
    assert falcon_calls(apps) == 0  # answered by the fast path
    assert same_answer(apps, f"/api/drops/{OPEN}/purchases", body=b'{"quantity": 1}').status_code == 422
    assert same_answer(apps, f"/api/drops/{OPEN}/purchases", body=buy("ann")).status_code == 201
    assert {engine.get_drop(LINE)["sold"] for engine in made.engines} == {0}


def test_no_admitted_ticket_is_409_not_admitted_with_its_state(line):
    made, apps = line
    ann, bob = made.join(LINE, ANN), made.join(LINE, BOB)
    elsewhere = made.join(OTHER_LINE, ANN)
    _, drop_mac, buyer_mac = ann.split(".")
    cases = [
        (None, "missing"),
        (ann, "waiting"),
        (bob, "other_buyer"),                              # a real ticket of the drop, given to bob
        (elsewhere, "invalid"),                            # ann's, but another drop's
        (f"1.{drop_mac}.{'0' * 64}", "invalid"),           # ann's ticket, the buyer mac forged
        (f"2.{drop_mac}.{buyer_mac}", "invalid"),          # ann's macs on bob's ticket number
        ("1.x.y", "invalid"),
    ]
    for token, state in cases:
        reply = same_answer(apps, f"/api/drops/{LINE}/purchases", body=buy(), headers=made.headers(ANN, token))
        assert (reply.status_code, reply.json) == (409, not_admitted_body(state)), token
    assert falcon_calls(apps) == 0
    assert made.states(LINE, ANN) == {"waiting"} and {e.get_drop(LINE)["sold"] for e in made.engines} == {0}


def test_an_admitted_ticket_buys_once(line):
    made, apps = line
    token = made.join(LINE, ANN)
    made.admit(LINE, ANN)
    path, headers = f"/api/drops/{LINE}/purchases", made.headers(ANN, token, **{"Idempotency-Key": "k-1"})
    first = same_answer(apps, path, body=buy("ignored", 2), headers=headers)
    assert first.status_code == 201 and first.json["quantity"] == 2
    assert made.states(LINE, ANN) == {"used"}
    again = same_answer(apps, path, body=buy("ignored", 2), headers=headers)  # the same key: the order again
    assert again.status_code == 200 and again.json == first.json
    used = same_answer(apps, path, body=buy(), headers=made.headers(ANN, token))
    assert (used.status_code, used.json) == (409, not_admitted_body("used"))
    assert {engine.get_drop(LINE)["sold"] for engine in made.engines} == {2}


def test_an_open_drop_ignores_the_header(line):
    made, apps = line
    for buyer_id, token in ((ANN, "junk"), (BOB, made.join(LINE, BOB)), ("c" * 32, made.join(LINE, ANN))):
        reply = same_answer(apps, f"/api/drops/{OPEN}/purchases", body=buy(), headers=made.headers(buyer_id, token))
        assert reply.status_code == 201
    assert falcon_calls(apps) == 0


# -- a ticket's view (SPEC 11): the herd's other hot request ----------------------------------


def same_view(apps, path: str, headers: dict[str, str], query: str | None = None) -> testing.Result:
    """The same answer from both paths; a view's joined_at is each file's own (the joins' times)."""
    replies = [client.simulate_get(path, headers=headers, query_string=query) for client in apps[:2]]
    expected, got = replies
    assert got.status == expected.status and sorted(got.headers.items()) == sorted(expected.headers.items())
    if got.status_code == 200:
        assert {**got.json, "joined_at": 0} == {**expected.json, "joined_at": 0}
    else:
        assert got.content == expected.content
    return got


def test_a_ticket_view_is_answered_alike_and_only_the_buyers_own_by_the_fast_path(line):
    made, apps = line
    token = made.join(LINE, ANN)
    made.join(LINE, BOB)
    mine = same_view(apps, f"/api/drops/{LINE}/tickets/1", made.headers(ANN))
    assert mine.status_code == 200 and mine.json["token"] == token and mine.json["state"] == "waiting"
    assert mine.headers["cache-control"] == "private, no-store" and falcon_calls(apps) == 0
    assert {engine.ticket_of(LINE, 1)["checked_in_at"] is not None for engine in made.engines} == {True}
    made.admit(LINE, ANN)
    assert same_view(apps, f"/api/drops/{LINE}/tickets/1", made.headers(ANN)).json["state"] == "admitted"
    assert falcon_calls(apps) == 0
    refused = [(f"/api/drops/{LINE}/tickets/2", made.headers(ANN), None),  # another buyer's
               (f"/api/drops/{LINE}/tickets/9", made.headers(ANN), None),
               (f"/api/drops/{LINE}/tickets/x", made.headers(ANN), None),
               (f"/api/drops/{OPEN}/tickets/1", made.headers(ANN), None),
               (f"/api/drops/{LINE}/tickets/1", made.headers(None), None),
               (f"/api/drops/{LINE}/tickets/1", {"Cookie": f"{COOKIE_NAME}={ANN}.{'0' * 64}"}, None),
               (f"/api/drops/{LINE}/tickets/1/x", made.headers(ANN), None),
               (f"/api/drops/{LINE}/tickets/1", made.headers(ANN), "a=1")]
    for path, headers, query in refused:
        assert same_view(apps, path, headers, query).status_code in (200, 404, 409)
    assert falcon_calls(apps) == len(refused)  # each one Falcon's (the view with a query string a 200 there)


def test_a_ticket_view_the_storage_fails_is_the_same_503(line):
    made, apps = line
    made.join(LINE, ANN)
    for engine in made.engines:
        engine.close()
    reply = same_view(apps, f"/api/drops/{LINE}/tickets/1", made.headers(ANN))
    assert reply.status_code == 503 and reply.json["error"]["code"] == "storage_unavailable"
    assert falcon_calls(apps) == 0
    made.engines[:] = [Engine(engine.path, readers=1) for engine in made.engines]  # for the fixture's check


def test_the_queue_document_is_answered_alike_by_the_fast_path(line):
    """The same document, headers and 304 on both paths (each file has its own seed: commitment and ETag
    differ); what is not the plain case (another If-None-Match, no line) is Falcon's."""
    made, apps = line
    made.join(LINE, ANN)
    path = f"/api/drops/{LINE}/queue"

    def both_get(headers: list[dict[str, str]]) -> list[testing.Result]:
        replies = [client.simulate_get(path, headers=each) for client, each in zip(apps[:2], headers, strict=True)]
        assert replies[0].status == replies[1].status and sorted(replies[0].headers) == sorted(replies[1].headers)
        return replies

    first = both_get([{}, {}])
    assert first[1].status_code == 200 and falcon_calls(apps) == 0
    assert {**first[1].json, "commitment": ""} == {**first[0].json, "commitment": ""}
    assert first[1].headers["cache-control"] == "public, max-age=1"
    etags = [reply.headers["etag"] for reply in first]
    unchanged = both_get([{"If-None-Match": etag} for etag in etags])
    assert unchanged[1].status_code == 304 and unchanged[1].content == b"" and falcon_calls(apps) == 0
    assert both_get([{"If-None-Match": f"W/{etag}, \"x\""} for etag in etags])[1].status_code == 304
    assert both_get([{"If-None-Match": '"other"'}] * 2)[1].status_code == 200
    assert falcon_calls(apps) == 2
    for drop_id in (OPEN, 999):
        assert same_view(apps, f"/api/drops/{drop_id}/queue", {}).status_code == 404
    assert falcon_calls(apps) == 4
