"""The whole payment flow over real HTTP: service <-> PayOS sandbox (SPEC 5 and 7)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator

import pytest
from payments_env import Shop, open_shop, wait_until
from payos_fixtures import TEST_CHECKSUM_KEY

from dropsvc.payments import sign_object


@pytest.fixture
def shop(tmp_path) -> Iterator[Shop]:
    opened = open_shop(tmp_path)
    yield opened
    opened.api.close()
    assert opened.server.stop() == 0, opened.server.log()
    opened.sandbox.stop()


def buy(shop: Shop, user: str, **drop_fields) -> tuple[dict, dict]:
    drop = shop.api.create_drop(**drop_fields)
    reply = shop.api.buy(drop["id"], user)
    assert reply.status == 201, reply.body
    return drop, reply.json


def remaining(shop: Shop, drop_id: int) -> int:
    return shop.api.get(f"/api/drops/{drop_id}").json["remaining"]


def test_buy_checkout_pay_in_the_sandbox_page_then_paid(shop):
    drop, order = buy(shop, "alice", total_stock=3, price=1_250_000)
    first = shop.api.post(f"/api/orders/{order['public_ref']}/checkout")
    assert first.status == 201
    linked = first.json
    again = shop.api.post(f"/api/orders/{order['public_ref']}/checkout")
    assert again.status == 200 and again.json["checkout_url"] == linked["checkout_url"]
    # the shopper's browser: the checkout page, then "Pay", then back to the order page
    url = urllib.parse.urlsplit(linked["checkout_url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", url.path)
    page = conn.getresponse()
    assert page.status == 200 and "1.250.000" in page.read().decode().replace(",", ".")
    link = shop.sandbox.link_state(shop.link_id(linked))
    assert link["amount"] == 1_250_000 and link["orderCode"] > 0
    conn.request("POST", url.path + "/pay", body=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
    redirect = conn.getresponse()
    redirect.read()
    assert redirect.status in (302, 303)
    assert redirect.getheader("Location").startswith(f"{shop.server.base_url}/orders/{order['public_ref']}")
    assert wait_until(lambda: shop.order(order["public_ref"])["status"] == "paid")
    assert shop.order(order["public_ref"])["paid_at"] is not None
    assert remaining(shop, drop["id"]) == 2
    assert [e["action"] for e in shop.events()] == ["paid"]
    assert shop.api.post(f"/api/orders/{order['public_ref']}/cancel").error_code == "paid"
    assert shop.api.post(f"/api/orders/{order['public_ref']}/checkout").error_code == "paid"
    assert shop.check() == []


def test_expiry_returns_stock_and_a_late_payment_takes_it_again(shop):
    drop, order = buy(shop, "alice", total_stock=1, hold_seconds=1)
    linked = shop.checkout(order["public_ref"])
    assert wait_until(lambda: shop.order(order["public_ref"])["status"] == "expired", timeout=8)
    assert remaining(shop, drop["id"]) == 1
    assert shop.api.post(f"/api/orders/{order['public_ref']}/checkout").error_code == "expired"
    shop.sandbox.pay(shop.link_id(linked), force=True)
    assert wait_until(lambda: shop.order(order["public_ref"])["status"] == "paid")
    assert remaining(shop, drop["id"]) == 0
    assert shop.check() == []


def test_late_payment_without_stock_needs_a_refund(shop):
    drop, order = buy(shop, "alice", total_stock=1, hold_seconds=1)
    linked = shop.checkout(order["public_ref"])
    assert wait_until(lambda: shop.order(order["public_ref"])["status"] == "expired", timeout=8)
    assert shop.api.buy(drop["id"], "bob").status == 201  # the unit went to someone else
    shop.sandbox.pay(shop.link_id(linked), force=True)
    assert wait_until(lambda: shop.order(order["public_ref"])["status"] == "refund_required")
    assert remaining(shop, drop["id"]) == 0
    assert [e["action"] for e in shop.events()] == ["refund_required"]
    assert shop.check() == []


def post_webhook(shop: Shop, body: dict) -> tuple[int, dict]:
    reply = shop.api.post("/webhooks/payos", body)
    return reply.status, reply.json


def test_forged_callbacks_are_refused_and_change_nothing(shop):
    _, order = buy(shop, "alice", total_stock=2)
    linked = shop.checkout(order["public_ref"])
    data = {"orderCode": shop.sandbox.link_state(shop.link_id(linked))["orderCode"], "amount": order["amount"],
            "reference": "FT-FORGED", "paymentLinkId": shop.link_id(linked), "code": "00", "desc": "success"}
    for body in ({"data": data, "signature": sign_object("not-the-key", data)},
                 {"data": data},
                 {"data": data, "signature": 42},
                 {"data": "nope", "signature": sign_object(TEST_CHECKSUM_KEY, {})}):
        status, reply = post_webhook(shop, body)
        assert status == 400 and reply["error"]["code"] == "invalid_signature"
    tampered = {**data, "amount": 1}
    status, _ = post_webhook(shop, {"data": tampered, "signature": sign_object(TEST_CHECKSUM_KEY, data)})
    assert status == 400
    assert shop.events() == [] and shop.order(order["public_ref"])["status"] == "reserved"
    # a verified callback missing what we need is refused too, and recorded nowhere
    broken = {"orderCode": "12", "amount": 1}
    status, reply = post_webhook(shop, {"data": broken, "signature": sign_object(TEST_CHECKSUM_KEY, broken)})
    assert status == 400 and reply["error"]["code"] == "invalid_webhook"
    assert shop.events() == []


def test_replayed_callbacks_apply_once(shop):
    drop, order = buy(shop, "alice", total_stock=2)
    linked = shop.checkout(order["public_ref"])
    shop.sandbox.set_faults(duplicate=3)
    shop.sandbox.pay(shop.link_id(linked))
    assert shop.sandbox.wait_idle(10)
    ok = [d for d in shop.sandbox.deliveries() if d["ok"]]
    assert len(ok) == 4  # PayOS-style: the same callback four times, all acknowledged
    assert [e["action"] for e in shop.events()] == ["paid"]
    assert shop.order(order["public_ref"])["status"] == "paid" and remaining(shop, drop["id"]) == 1
    assert shop.check() == []


def test_reordered_callbacks_land_on_their_orders(shop):
    drop = shop.api.create_drop(total_stock=5, per_user_limit=1)
    orders = [shop.api.buy(drop["id"], f"buyer-{n}").json for n in range(4)]
    links = [shop.link_id(shop.checkout(o["public_ref"])) for o in orders]
    shop.sandbox.set_faults(reorder=True)
    for link in links:
        shop.sandbox.pay(link)
    shop.sandbox.flush()
    assert shop.sandbox.wait_idle(10)
    assert all(wait_until(lambda o=o: shop.order(o["public_ref"])["status"] == "paid") for o in orders)
    assert sorted(e["action"] for e in shop.events()) == ["paid"] * 4
    assert shop.check() == []


def test_wrong_amount_is_recorded_and_leaves_the_order(shop):
    _, order = buy(shop, "alice", total_stock=2)
    linked = shop.checkout(order["public_ref"])
    shop.sandbox.set_faults(wrong_amount=True)
    shop.sandbox.pay(shop.link_id(linked))
    assert shop.sandbox.wait_idle(10)
    assert wait_until(lambda: [e["action"] for e in shop.events()] == ["amount_mismatch"])
    assert shop.order(order["public_ref"])["status"] == "reserved"
    assert shop.check() == []


def test_payos_test_callback_for_an_unknown_order_is_acknowledged(shop):
    shop.sandbox.send_test_callback(order_code=123)
    assert shop.sandbox.wait_idle(10)
    assert [d["status"] for d in shop.sandbox.deliveries()] == [200]
    assert [(e["order_code"], e["action"]) for e in shop.events()] == [(123, "unknown_order")]


def test_cancel_also_cancels_the_payment_link(shop):
    drop, order = buy(shop, "alice", total_stock=2)
    linked = shop.checkout(order["public_ref"])
    assert shop.api.post(f"/api/orders/{order['public_ref']}/cancel").json["status"] == "cancelled"
    assert wait_until(lambda: shop.sandbox.link_state(shop.link_id(linked))["status"] == "CANCELLED")
    assert remaining(shop, drop["id"]) == 2
    assert shop.api.post(f"/api/orders/{order['public_ref']}/checkout").error_code == "cancelled"


def test_checkout_of_an_unknown_order_and_without_payos(shop, start_server):
    assert shop.api.post("/api/orders/" + "a" * 26 + "/checkout").status == 404
    bare = start_server()
    from live_server import Api

    api = Api(bare)
    drop = api.create_drop(total_stock=1)
    order = api.buy(drop["id"], "alice").json
    reply = api.post(f"/api/orders/{order['public_ref']}/checkout")
    assert reply.status == 503 and reply.error_code == "payments_unavailable"
    hook = api.post("/webhooks/payos", {"data": {}, "signature": "x"})
    assert hook.status == 503
    api.close()
    assert json.loads(reply.body)["error"]["message"]


def test_demo_mode_pays_through_the_in_process_sandbox(start_server):
    from live_server import Api

    demo = start_server(demo=True)
    api = Api(demo)
    drop = api.get("/api/drops").json["drops"][0]
    order = api.buy(drop["id"], "demo-shopper").json
    linked = api.post(f"/api/orders/{order['public_ref']}/checkout")
    assert linked.status == 201
    url = urllib.parse.urlsplit(linked.json["checkout_url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("POST", url.path + "/pay", body=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status in (302, 303)
    assert wait_until(lambda: api.get(f"/api/orders/{order['public_ref']}").json["status"] == "paid")
    api.close()


def test_cancelling_on_the_payos_page_gives_the_hold_back_at_the_next_checkout(shop):
    drop, order = buy(shop, "alice", total_stock=1)
    linked = shop.checkout(order["public_ref"])
    url = urllib.parse.urlsplit(linked["checkout_url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("POST", url.path + "/cancel", body=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
    back = conn.getresponse()
    back.read()
    assert back.status in (302, 303) and "cancel=true" in back.getheader("Location")
    assert shop.order(order["public_ref"])["status"] == "reserved"  # PayOS sends no webhook for a cancel
    # Pay again: PayOS will not make a second link for this orderCode, so the order is cancelled
    again = shop.api.post(f"/api/orders/{order['public_ref']}/checkout")
    assert again.status == 409 and again.error_code == "cancelled"
    assert shop.order(order["public_ref"])["status"] == "cancelled"
    assert remaining(shop, drop["id"]) == 1
    assert shop.api.buy(drop["id"], "bob").status == 201
    assert shop.check() == []
