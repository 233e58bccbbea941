"""Admin reads over HTTP: a drop's orders (paged, by status), an order's history, payment events."""

from __future__ import annotations

import uuid

import pytest
from live_server import Api
from payos_fixtures import TEST_API_KEY, TEST_CHECKSUM_KEY, TEST_CLIENT_ID

from dropsvc.payments import sign_object

PAYOS_ENV = {"PAYOS_BASE_URL": "http://127.0.0.1:9", "PAYOS_CLIENT_ID": TEST_CLIENT_ID,
             "PAYOS_API_KEY": TEST_API_KEY, "PAYOS_CHECKSUM_KEY": TEST_CHECKSUM_KEY}


def admin_get(api: Api, path: str, token: str | None = None):
    token = api.server.admin_token if token is None else token
    return api.get(path, headers={"Authorization": f"Bearer {token}"})


def buy_many(api: Api, count: int, **drop_fields) -> tuple[dict, list[dict]]:
    drop = api.create_drop(total_stock=count + 5, **drop_fields)
    orders = []
    for index in range(count):
        reply = api.buy(drop["id"], f"buyer-{uuid.uuid4().hex[:6]}-{index}")
        assert reply.status == 201, reply.body
        orders.append(reply.json)
    return drop, orders


def all_pages(api: Api, path: str, limit: int) -> tuple[list[dict], int]:
    """Follow next_after to the end; returns the orders and the number of pages."""
    orders, pages, after = [], 0, None
    while True:
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}" + ("" if after is None else f"&after={after}")
        reply = admin_get(api, url)
        assert reply.status == 200, reply.body
        pages += 1
        page = reply.json
        assert len(page["orders"]) <= limit
        orders += page["orders"]
        after = page["next_after"]
        if after is None:
            return orders, pages
        assert after == page["orders"][-1]["id"]


def test_a_drops_orders_page_by_page_in_id_order(api):
    drop, bought = buy_many(api, 5)
    other, _ = buy_many(api, 2)  # another drop's orders never show up
    orders, pages = all_pages(api, f"/api/admin/drops/{drop['id']}/orders", limit=2)
    assert pages == 3
    assert [o["public_ref"] for o in orders] == [o["public_ref"] for o in bought]
    assert [o["id"] for o in orders] == sorted(o["id"] for o in orders)
    assert {o["drop_id"] for o in orders} == {drop["id"]}
    first = orders[0]
    assert first["user_id"] == bought[0]["user_id"] and first["status"] == "reserved"
    assert first["amount"] == drop["price"] and first["currency"] == "VND"
    assert first["order_code"] > first["id"]
    whole = admin_get(api, f"/api/admin/drops/{drop['id']}/orders").json
    assert len(whole["orders"]) == 5 and whole["next_after"] is None and whole["drop_id"] == drop["id"]
    # exactly a full page: no phantom next page
    exact = admin_get(api, f"/api/admin/drops/{drop['id']}/orders?limit=5").json
    assert len(exact["orders"]) == 5 and exact["next_after"] is None


def test_filter_by_status(api):
    drop, bought = buy_many(api, 4)
    for order in bought[1:3]:
        assert api.post(f"/api/orders/{order['public_ref']}/cancel").status == 200
    cancelled, _ = all_pages(api, f"/api/admin/drops/{drop['id']}/orders?status=cancelled", limit=1)
    assert [o["public_ref"] for o in cancelled] == [o["public_ref"] for o in bought[1:3]]
    assert {o["status"] for o in cancelled} == {"cancelled"}
    reserved = admin_get(api, f"/api/admin/drops/{drop['id']}/orders?status=reserved").json["orders"]
    assert [o["public_ref"] for o in reserved] == [bought[0]["public_ref"], bought[3]["public_ref"]]
    assert admin_get(api, f"/api/admin/drops/{drop['id']}/orders?status=paid").json["orders"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=-1", "limit=x", "after=-1", "after=1.5",
                                   "status=bogus", "status=RESERVED", "after=99999999999999999999"])
def test_bad_paging_is_422(api, query):
    drop = api.create_drop()
    reply = admin_get(api, f"/api/admin/drops/{drop['id']}/orders?{query}")
    assert (reply.status, reply.error_code) == (422, "invalid_field"), reply.body


def test_unknown_drop_and_order_are_404(api):
    assert admin_get(api, "/api/admin/drops/999999999/orders").error_code == "drop_not_found"
    assert admin_get(api, "/api/admin/drops/abc/orders").status == 404
    assert admin_get(api, "/api/admin/orders/" + "a" * 26).error_code == "order_not_found"
    assert admin_get(api, "/api/admin/orders/short").status == 404


@pytest.mark.parametrize("path", ["/api/admin/drops/1/orders", "/api/admin/orders/" + "a" * 26,
                                  "/api/admin/payment-events"])
def test_admin_reads_need_the_token(api, path):
    assert api.get(path).status == 401
    reply = admin_get(api, path, token="wrong")
    assert (reply.status, reply.error_code) == (401, "unauthorized")
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_admin_reads_are_off_without_a_token(start_server):
    server = start_server(admin_token=None)
    client = Api(server)
    reply = client.get("/api/admin/payment-events", headers={"Authorization": "Bearer anything"})
    assert (reply.status, reply.error_code) == (403, "admin_disabled")
    client.close()


def test_history_of_a_cancelled_order(api):
    _, [order] = buy_many(api, 1)
    assert api.post(f"/api/orders/{order['public_ref']}/cancel").status == 200
    detail = admin_get(api, f"/api/admin/orders/{order['public_ref']}").json
    assert detail["order"]["public_ref"] == order["public_ref"] and detail["order"]["status"] == "cancelled"
    assert detail["payment_events"] == []
    assert detail["history"] == [
        {"at": order["created_at"], "event": "created", "status": "reserved"},
        {"at": None, "event": "cancelled", "status": "cancelled"},
    ]


def webhook(api: Api, order_code: int, amount: int, reference: str) -> dict:
    data = {"orderCode": order_code, "amount": amount, "reference": reference, "paymentLinkId": "link-x",
            "code": "00", "desc": "success", "accountNumber": "12345678", "counterAccountNumber": "999"}
    reply = api.post("/webhooks/payos", {"code": "00", "desc": "success", "success": True, "data": data,
                                         "signature": sign_object(TEST_CHECKSUM_KEY, data)})
    assert reply.status == 200, reply.body
    return reply.json


def test_amount_mismatches_and_a_paid_orders_history(start_server):
    server = start_server(env=PAYOS_ENV)
    api = Api(server)
    _, (short, paid) = buy_many(api, 2, price=500_000)
    short_code = admin_get(api, f"/api/admin/orders/{short['public_ref']}").json["order"]["order_code"]
    paid_code = admin_get(api, f"/api/admin/orders/{paid['public_ref']}").json["order"]["order_code"]
    assert webhook(api, short_code, 5_000, "FT-SHORT")["action"] == "amount_mismatch"
    assert webhook(api, paid_code, 500_000, "FT-PAID")["action"] == "paid"
    assert webhook(api, paid_code, 500_000, "FT-PAID")["replayed"] is True
    assert webhook(api, 10**15, 1, "FT-NOBODY")["action"] == "unknown_order"

    mismatches = admin_get(api, "/api/admin/payment-events?action=amount_mismatch").json
    assert mismatches["next_after"] is None
    [event] = mismatches["events"]
    assert event["order_public_ref"] == short["public_ref"] and event["order_code"] == short_code
    assert (event["paid_amount"], event["order_amount"]) == (5_000, 500_000)
    assert event["reference"] == "FT-SHORT" and event["code"] == "00"
    assert "counterAccountNumber" not in str(mismatches) and "signature" not in str(mismatches)

    events, pages, after = [], 0, ""
    while after is not None:
        page = admin_get(api, f"/api/admin/payment-events?limit=1{after}").json
        events += page["events"]
        pages += 1
        after = None if page["next_after"] is None else f"&after={page['next_after']}"
    assert [e["action"] for e in events] == ["amount_mismatch", "paid", "unknown_order"] and pages == 3
    assert events[2]["order_public_ref"] is None and events[2]["order_amount"] is None
    assert admin_get(api, "/api/admin/payment-events?action=refunded").status == 422

    detail = admin_get(api, f"/api/admin/orders/{paid['public_ref']}").json
    assert detail["order"]["status"] == "paid" and detail["order"]["paid_at"] is not None
    assert [e["reference"] for e in detail["payment_events"]] == ["FT-PAID"]
    history = detail["history"]
    assert [h["event"] for h in history] == ["created", "payment_event", "paid"]
    assert history[1]["action"] == "paid" and history[2]["at"] == detail["order"]["paid_at"]
    assert history[0]["at"] <= history[1]["at"] <= history[2]["at"]
    short_history = admin_get(api, f"/api/admin/orders/{short['public_ref']}").json["history"]
    assert [(h["event"], h.get("action")) for h in short_history] == [("created", None),
                                                                     ("payment_event", "amount_mismatch")]
    api.close()


def test_history_of_an_expired_order(start_server):
    server = start_server()
    api = Api(server)
    drop = api.create_drop(hold_seconds=1)
    order = api.buy(drop["id"], "slow-payer").json
    path = f"/api/admin/orders/{order['public_ref']}"
    for _ in range(100):
        detail = admin_get(api, path).json
        if detail["order"]["status"] == "expired":
            break
        import time

        time.sleep(0.1)
    assert detail["order"]["status"] == "expired"
    assert detail["history"][-1] == {"at": order["expires_at"], "event": "expired", "status": "expired"}
    api.close()
