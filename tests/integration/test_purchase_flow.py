"""Purchases, idempotency, ETags, orders and cancel over HTTP (SPEC 5 and 6)."""

from __future__ import annotations

import time

import pytest

from dropsvc import Engine

ORDER_FIELDS = {"public_ref", "drop_id", "user_id", "quantity", "amount", "currency", "status",
                "created_at", "expires_at", "paid_at", "checkout_url"}


def order_count(snapshot) -> int:
    return len(snapshot()["orders"])


# -- a purchase ------------------------------------------------------------


def test_purchase_answers_the_order_and_takes_stock(api):
    drop = api.create_drop(price=1_500_000, total_stock=3, per_user_limit=2, hold_seconds=60)
    before = int(time.time() * 1000)
    reply = api.buy(drop["id"], "alice", 2)

    assert reply.status == 201
    order = reply.json
    assert set(order) == ORDER_FIELDS  # never the internal id nor the PayOS orderCode
    assert order["drop_id"] == drop["id"] and order["user_id"] == "alice"
    assert (order["quantity"], order["amount"], order["currency"]) == (2, 3_000_000, "VND")
    assert order["status"] == "reserved" and order["paid_at"] is None
    assert before - 1000 <= order["created_at"] <= int(time.time() * 1000) + 1000
    assert order["expires_at"] == order["created_at"] + 60_000
    assert reply.headers["location"] == f"/api/orders/{order['public_ref']}"

    fetched = api.get(reply.headers["location"])
    assert fetched.status == 200 and fetched.json == order
    assert api.get(f"/api/drops/{drop['id']}").json["remaining"] == 1


@pytest.mark.parametrize(("setup", "code"), [
    ({"total_stock": 1}, "sold_out"),
    ({"per_user_limit": 1}, "per_user_limit"),
    ({"starts_at": 4_000_000_000_000}, "not_started"),
], ids=["sold-out", "per-user-limit", "not-started"])
def test_refusals_are_409_with_their_code(api, snapshot, setup, code):
    drop = api.create_drop(**setup)
    if code != "not_started":
        assert api.buy(drop["id"], "first").status == 201
    user = "first" if code == "per_user_limit" else "second"
    before = snapshot()
    reply = api.buy(drop["id"], user)
    assert (reply.status, reply.error_code) == (409, code)
    assert snapshot() == before


def test_ended_drop_is_409_ended(api, snapshot):
    drop = api.create_drop()
    now = int(time.time() * 1000)
    # move the window into the past directly: the API refuses ends_at <= starts_at only
    reply = api.admin("PATCH", f"/api/admin/drops/{drop['id']}",
                      {"starts_at": now - 60_000, "ends_at": now - 1_000})
    assert reply.status == 200 and reply.json["status"] == "ended"
    before = snapshot()
    reply = api.buy(drop["id"], "late")
    assert (reply.status, reply.error_code) == (409, "ended")
    assert snapshot() == before


# -- idempotency -----------------------------------------------------------


def test_repeated_idempotency_key_answers_the_same_order(api, snapshot):
    drop = api.create_drop(total_stock=5, per_user_limit=3)
    first = api.buy(drop["id"], "bob", 2, key="checkout-42")
    assert first.status == 201
    count = order_count(snapshot)

    again = api.buy(drop["id"], "bob", 2, key="checkout-42")
    assert again.status == 200
    assert again.json == first.json
    assert order_count(snapshot) == count
    assert api.get(f"/api/drops/{drop['id']}").json["sold"] == 2


@pytest.mark.parametrize(("user", "quantity"), [("bob", 1), ("carol", 2)], ids=["quantity", "user"])
def test_same_key_other_body_is_422(api, snapshot, user, quantity):
    drop = api.create_drop(total_stock=5, per_user_limit=3)
    assert api.buy(drop["id"], "bob", 2, key="k-1").status == 201
    before = snapshot()
    reply = api.buy(drop["id"], user, quantity, key="k-1")
    assert (reply.status, reply.error_code) == (422, "idempotency_conflict")
    assert snapshot() == before


def test_idempotency_keys_are_per_drop(api):
    one, two = api.create_drop(), api.create_drop()
    first = api.buy(one["id"], "dave", key="same-key")
    second = api.buy(two["id"], "dave", key="same-key")
    assert (first.status, second.status) == (201, 201)
    assert first.json["public_ref"] != second.json["public_ref"]


# -- ETags -----------------------------------------------------------------


def test_etag_and_if_none_match(api):
    drop = api.create_drop(total_stock=4)
    path = f"/api/drops/{drop['id']}"
    first = api.get(path)
    etag = first.headers["etag"]
    assert first.status == 200 and etag.startswith('"') and etag.endswith('"')
    assert first.json["remaining"] == 4 and first.json["status"] == "live"

    for header in (etag, "W/" + etag, '"other", ' + etag, "*"):
        cached = api.get(path, {"If-None-Match": header})
        assert (cached.status, cached.body) == (304, b""), header
        assert cached.headers["etag"] == etag
    assert api.get(path, {"If-None-Match": '"not-it"'}).status == 200

    assert api.buy(drop["id"], "erin").status == 201
    after = api.get(path, {"If-None-Match": etag})
    assert after.status == 200
    assert after.headers["etag"] != etag
    assert after.json["remaining"] == 3


def test_drop_list_has_an_etag_too(api):
    drop = api.create_drop()
    listing = api.get("/api/drops")
    assert listing.status == 200
    assert drop["id"] in [shown["id"] for shown in listing.json["drops"]]
    etag = listing.headers["etag"]
    assert api.get("/api/drops", {"If-None-Match": etag}).status == 304
    assert api.buy(drop["id"], "frank").status == 201
    assert api.get("/api/drops", {"If-None-Match": etag}).status == 200


# -- cancel ----------------------------------------------------------------


def test_cancel_gives_the_stock_back(api, service):
    drop = api.create_drop(total_stock=2, per_user_limit=1)
    path = f"/api/drops/{drop['id']}"
    order = api.buy(drop["id"], "gina").json
    assert api.get(path).json["remaining"] == 1

    cancelled = api.request("POST", f"/api/orders/{order['public_ref']}/cancel")
    assert cancelled.status == 200
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["public_ref"] == order["public_ref"]
    assert api.get(path).json["remaining"] == 2

    again = api.request("POST", f"/api/orders/{order['public_ref']}/cancel")
    assert (again.status, again.json["status"]) == (200, "cancelled")
    assert api.get(path).json["remaining"] == 2
    assert api.get(f"/api/orders/{order['public_ref']}").json["status"] == "cancelled"
    # the holding went back too: the same shopper may buy again
    assert api.buy(drop["id"], "gina").status == 201

    unknown = api.request("POST", "/api/orders/zzzzzzzzzzzzzzzzzzzzzzzzzz/cancel")
    assert (unknown.status, unknown.error_code) == (404, "order_not_found")
    with Engine(service.db_path, readers=1) as engine:
        assert engine.check() == []


def test_a_tampered_ref_is_not_an_order(api):
    drop = api.create_drop()
    ref = api.buy(drop["id"], "hank").json["public_ref"]
    tampered = ref[:-1] + ("a" if ref[-1] != "a" else "b")
    for candidate in (tampered, ref.upper(), ref + "a", ref[:-1]):
        reply = api.get(f"/api/orders/{candidate}")
        assert (reply.status, reply.error_code) == (404, "order_not_found"), candidate
