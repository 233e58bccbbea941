"""The answers in words, one click = one purchase, and the order page (PayOS's return and cancel URL)."""

from __future__ import annotations

import re

from live_server import assert_no_unhandled_errors, launch
from page_helpers import POLL_WAIT_MS, allowed_hosts, card_of, open_shop, orders_of, saved_ref
from playwright.sync_api import expect


def test_refusals_are_said_in_words(shop, browser, shots):
    limited = shop.api.create_drop(name="One per shopper", price=700_000, total_stock=5, per_user_limit=1)
    last_one = shop.api.create_drop(name="Last pair", price=1_100_000, total_stock=1)
    page, card = open_shop(shop, browser, limited)
    card.get_by_role("button", name="Buy").click()
    expect(card.locator(".msg-reserved")).to_be_visible()
    card.get_by_role("button", name="Buy").click()  # the same buyer (cookie), whatever id the page sends
    expect(card.locator(".msg-per_user_limit")).to_have_text(
        "Limit reached: at most 1 per shopper, and this would take you over it.")

    # the page has not seen the last unit go yet (its polls are held back): the purchase says so
    page.route("**/api/drops", lambda route: route.fulfill(status=304))
    assert shop.api.buy(last_one["id"], "quicker-buyer").status == 201
    other = card_of(page, last_one)
    other.get_by_role("button", name="Buy").click()
    expect(other.locator(".msg-sold_out")).to_contain_text("Sold out: every unit is taken.")
    shots(page, "limit-and-sold-out")
    page.unroute("**/api/drops")
    expect(other).to_have_attribute("data-state", "sold_out", timeout=POLL_WAIT_MS)
    assert [o["status"] for o in orders_of(shop, limited)] == ["reserved"]


def test_a_double_click_buys_once(shop, browser):
    drop = shop.api.create_drop(name="Double click", price=100_000, total_stock=10, per_user_limit=5)
    page, card = open_shop(shop, browser, drop)
    card.get_by_role("button", name="Buy").dblclick(delay=100)  # slow enough for the first answer to come back first
    expect(card.locator(".msg-reserved")).to_be_visible()
    page.wait_for_timeout(500)
    assert len(orders_of(shop, drop)) == 1


def test_a_lost_answer_is_retried_with_the_same_key(shop, browser):
    drop = shop.api.create_drop(name="Flaky network", price=100_000, total_stock=10, per_user_limit=5)
    page = browser.page
    page.goto(shop.server.base_url + "/")
    keys: list[str] = []

    def lose_the_first_answer(route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the service reserves...
            route.abort("connectionreset")  # ...but the browser never hears it
        else:
            route.continue_()

    page.route("**/api/drops/*/purchases", lose_the_first_answer)
    card = card_of(page, drop)
    card.get_by_role("button", name="Buy").click()
    expect(card.locator(".msg-reserved")).to_be_visible()
    assert len(keys) == 2 and keys[0] == keys[1], keys
    [order] = orders_of(shop, drop)
    assert order["idempotency_key"] == keys[0] and order["user_id"].startswith("buyer-")
    card.get_by_role("button", name="Buy").click()  # a new click is a new purchase, with a new key
    expect(card.locator(".msg-reserved")).to_be_visible()
    page.wait_for_timeout(300)
    assert len(orders_of(shop, drop)) == 2 and len(set(keys)) == 2


def test_order_page_reserved_then_cancelled(shop, browser, shots):
    drop = shop.api.create_drop(name="Cancel me", price=2_000_000, total_stock=2)
    page, card = open_shop(shop, browser, drop)
    card.get_by_role("button", name="Buy").click()
    card.get_by_role("link", name="Order page").click()
    ref = saved_ref(page, drop)
    page.wait_for_url(f"{shop.server.base_url}/orders/{ref}")
    order_card = page.locator(".order-card")
    expect(order_card).to_have_attribute("data-status", "reserved")
    expect(page.locator(".order-status")).to_contain_text(re.compile(r"Reserved for you, waiting for payment\. "
                                                                     r"Pay within (10:00|9:[0-5]\d)\."))
    expect(page.get_by_role("button", name="Pay")).to_be_enabled()
    shots(page, "reserved")
    page.get_by_role("button", name="Cancel order").click()
    expect(order_card).to_have_attribute("data-status", "cancelled")
    expect(page.locator(".order-status")).to_contain_text("Cancelled. The stock went back to the drop.")
    expect(page.get_by_role("button", name="Pay")).to_have_count(0)
    shots(page, "cancelled")
    assert shop.api.get(f"/api/drops/{drop['id']}").json["remaining"] == 2


def test_leaving_the_payos_page_without_paying_comes_back_reserved(shop, browser, shots):
    drop = shop.api.create_drop(name="Second thoughts", price=650_000, total_stock=2)
    page, card = open_shop(shop, browser, drop)
    card.get_by_role("button", name="Buy").click()
    card.get_by_role("button", name="Pay").click()
    page.wait_for_url(shop.sandbox.base_url + "/checkout/**")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(re.compile(r"/orders/[a-z0-9]+\?.*cancel=true"))
    expect(page.locator(".order-card")).to_have_attribute("data-status", "reserved")
    expect(page.locator(".order-status")).to_contain_text("You cancelled the payment at PayOS")
    expect(page.get_by_role("button", name="Pay")).to_be_hidden()  # PayOS closed that link for good
    shots(page, "back-from-payos-unpaid")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.locator(".order-card")).to_have_attribute("data-status", "cancelled")
    assert shop.api.get(f"/api/drops/{drop['id']}").json["remaining"] == 2
    assert browser.hosts() == allowed_hosts(shop)


def test_the_demo_sells_its_drop_through_the_in_process_sandbox(tmp_path, browser):
    server = launch(tmp_path, demo=True)  # what `make run` starts
    try:
        page = browser.page
        page.goto(server.base_url + "/")
        card = page.locator("li.drop", has_text="Limited sneaker")
        expect(card.locator(".price")).to_have_text("2.500.000\u00a0₫")
        card.get_by_role("button", name="Buy").click()
        card.get_by_role("button", name="Pay").click()
        page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/checkout/"))
        page.get_by_role("button", name="Pay").click()
        expect(page.locator(".order-card")).to_have_attribute("data-status", "paid", timeout=POLL_WAIT_MS)
        sandbox = {h for h in browser.hosts() if h != server.base_url}
        assert len(sandbox) == 1 and sandbox.pop().startswith("http://127.0.0.1:")
    finally:
        assert server.stop() == 0
        assert_no_unhandled_errors(server)


def test_an_expired_hold_and_a_refund_are_said_in_words(shop, browser, shots):
    drop = shop.api.create_drop(name="Short hold", price=300_000, total_stock=1, hold_seconds=2)
    page, card = open_shop(shop, browser, drop)
    card.get_by_role("button", name="Buy").click()
    ref = saved_ref(page, drop)
    linked = shop.checkout(ref)  # a payment link made in time...
    expect(card.locator(".hold")).to_have_text(re.compile(r"^0:0[0-2]$"))
    expired = card.locator(".msg-expired")
    expect(expired).to_be_visible(timeout=5_000)
    expect(expired).to_have_text("Your hold expired before payment; the stock went back to the drop.")
    expect(card.get_by_role("button", name="Pay")).to_be_hidden()
    shots(page, "hold-expired")
    page.goto(f"{shop.server.base_url}/orders/{ref}")
    expect(page.locator(".order-card")).to_have_attribute("data-status", "expired", timeout=10_000)
    expect(page.locator(".order-status")).to_contain_text("The hold expired before payment")
    shots(page, "order-expired")

    assert shop.api.buy(drop["id"], "next-in-line").status == 201  # ...the unit goes to someone else
    shop.sandbox.pay(shop.link_id(linked), force=True)  # ...and then the late payment arrives
    page.reload()
    expect(page.locator(".order-card")).to_have_attribute("data-status", "refund_required", timeout=POLL_WAIT_MS)
    expect(page.locator(".order-status")).to_contain_text("It will be refunded.")
    shots(page, "refund-required")


def test_an_unknown_order_is_a_404_page_not_an_error(shop, browser, shots):
    page = browser.page
    reply = page.goto(f"{shop.server.base_url}/orders/{'a' * 26}")
    assert reply.status == 404 and reply.headers["content-type"].startswith("text/html")
    expect(page.locator(".order-card")).to_have_attribute("data-status", "not_found")
    expect(page.locator(".order-status")).to_contain_text("We can't find this order.")
    shots(page, "not-found")
    page.get_by_role("link", name="All drops").click()
    expect(page.locator("#drops-title")).to_have_text("Drops")
