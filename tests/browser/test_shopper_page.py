"""The shopper page in a real browser: buy, pay in the sandbox, come back paid; live stock; countdowns; phones."""

from __future__ import annotations

import re

from page_helpers import (
    PHONE,
    POLL_WAIT_MS,
    allowed_hosts,
    card_of,
    icon_statuses,
    no_horizontal_scroll,
    now_ms,
    open_shop,
    orders_of,
    saved_ref,
    tab_to,
)
from playwright.sync_api import expect


def test_buy_then_pay_in_the_sandbox_page_then_back_on_a_paid_order(shop, browser, shots):
    drop = shop.api.create_drop(name="Air Phantom 1 — Midnight", price=1_250_000, total_stock=3, per_user_limit=2,
                                description="Hand-numbered pair from the spring run.")
    page, card = open_shop(shop, browser, drop)
    expect(card.locator("h2")).to_have_text("Air Phantom 1 — Midnight")
    expect(card.locator(".price")).to_have_text("1.250.000\u00a0₫")
    expect(card.locator(".stock")).to_have_text("3 of 3 left")
    expect(card).to_have_attribute("data-state", "live")
    expect(card.locator(".placeholder")).to_be_visible()  # no image_url: the placeholder, not a broken image
    shots(page, "1-live")
    # the stock is polled cheaply: an unchanged list is a conditional request answered 304, no body
    with page.expect_response(lambda r: r.url.endswith("/api/drops") and r.status == 304) as polled:
        pass
    assert polled.value.request.headers.get("if-none-match")
    assert polled.value.headers.get("content-length", "0") == "0"

    card.get_by_label("Quantity").select_option("2")
    card.get_by_role("button", name="Buy").click()
    expect(card.locator(".msg-reserved")).to_contain_text("Reserved for you: 2 × Air Phantom 1 — Midnight, 2.500.000")
    expect(card.locator(".hold")).to_have_text(re.compile(r"^(10:00|9:[0-5]\d)$"))
    expect(card.locator(".stock")).to_have_text("1 of 3 left", timeout=POLL_WAIT_MS)
    shots(page, "2-reserved")
    ref = saved_ref(page, drop)
    [order] = orders_of(shop, drop)
    assert order["quantity"] == 2 and order["status"] == "reserved"
    assert order["user_id"].startswith("buyer-"), "the purchase is the cookie's buyer's, not the page's id"

    card.get_by_role("button", name="Pay").click()
    page.wait_for_url(shop.sandbox.base_url + "/checkout/**")
    expect(page.locator(".amount")).to_contain_text("2.500.000")
    shots(page, "3-sandbox-checkout", ("desktop",))
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(re.escape(f"{shop.server.base_url}/orders/{ref}") + r"(\?.*)?$"))
    order_card = page.locator(".order-card")
    expect(order_card).to_have_attribute("data-status", "paid", timeout=POLL_WAIT_MS)
    expect(page.locator(".order-status")).to_contain_text("Paid. Thank you: your order is confirmed.")
    expect(page.locator(".facts")).to_contain_text("Air Phantom 1 — Midnight")
    expect(page.get_by_role("button", name="Pay")).to_have_count(0)
    shots(page, "4-paid")
    assert shop.order(ref)["status"] == "paid" and shop.check() == []

    assert browser.hosts() == allowed_hosts(shop), browser.hosts()


def test_sold_out_appears_while_the_page_is_open(shop, browser, shots):
    drop = shop.api.create_drop(name="Signed print", price=4_900_000, total_stock=1)
    page, card = open_shop(shop, browser, drop)
    expect(card.locator(".stock")).to_have_text("1 of 1 left")
    buy = card.locator("form.buy button")
    expect(buy).to_have_text("Buy")
    expect(buy).to_be_enabled()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    assert shop.api.buy(drop["id"], "someone-else").status == 201  # the last unit goes elsewhere
    expect(card).to_have_attribute("data-state", "sold_out", timeout=POLL_WAIT_MS)
    expect(card.locator(".badge")).to_have_text("Sold out")
    expect(card.locator(".stock")).to_have_text("Sold out")
    expect(buy).to_be_disabled()
    expect(buy).to_have_text("Sold out")
    expect(card.get_by_label("Quantity")).to_be_hidden()
    assert navigations == [], "the page updated in place, without a reload"
    shots(page, "sold-out")
    assert browser.hosts() <= allowed_hosts(shop)


def test_the_countdown_of_an_upcoming_drop_turns_live(shop, browser, shots):
    drop = shop.api.create_drop(name="Night run", price=990_000, total_stock=5, starts_at=now_ms() + 6_000)
    page, card = open_shop(shop, browser, drop)
    expect(card).to_have_attribute("data-state", "upcoming")
    expect(card.locator(".badge")).to_have_text("Upcoming")
    countdown = card.locator(".countdown time")
    expect(countdown).to_have_text(re.compile(r"^0:0[1-6]$"))
    buy = card.locator("form.buy button")
    expect(buy).to_be_disabled()
    expect(buy).to_have_text("Not open yet")
    first = countdown.inner_text()
    page.wait_for_timeout(1_200)
    assert countdown.inner_text() < first, "the countdown counts down"
    shots(page, "upcoming")

    expect(card).to_have_attribute("data-state", "live", timeout=6_000 + POLL_WAIT_MS)
    expect(card.locator(".badge")).to_have_text("Live")
    expect(card.locator(".countdown")).to_be_hidden()
    expect(buy).to_be_enabled()
    expect(buy).to_have_text("Buy")
    shots(page, "turned-live")
    buy.click()
    expect(card.locator(".msg-reserved")).to_be_visible()


def test_on_a_phone_nothing_scrolls_sideways_and_the_keyboard_buys(shop, browser, shots):
    drop = shop.api.create_drop(name="Trail runner with an unusually long name that has to wrap somewhere",
                                price=3_150_000, total_stock=40, per_user_limit=3)
    shop.api.create_drop(name="Coming soon", price=500_000, total_stock=2, starts_at=now_ms() + 3_600_000)
    page = browser.page
    page.set_viewport_size(PHONE)
    page.goto(shop.server.base_url + "/")
    card = card_of(page, drop)
    expect(card.locator(".stock")).to_have_text("40 of 40 left")
    assert no_horizontal_scroll(page)
    shots(page, "list", ("phone",))

    quantity = card.get_by_label("Quantity")
    tab_to(page, quantity)
    page.keyboard.press("ArrowDown")  # 1 -> 2, with the keyboard
    buy = card.get_by_role("button", name="Buy")
    tab_to(page, buy, limit=3)
    outline = buy.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
    assert not outline.startswith("none") and not outline.endswith(" 0px"), f"no visible focus: {outline}"
    assert buy.bounding_box()["x"] + buy.bounding_box()["width"] <= PHONE["width"]
    shots(page, "keyboard-focus-on-buy", ("phone",))
    page.keyboard.press("Enter")
    expect(card.locator(".msg-reserved")).to_contain_text("2 ×")
    assert no_horizontal_scroll(page)
    shots(page, "reserved", ("phone",))

    pay = card.get_by_role("button", name="Pay")
    tab_to(page, pay, limit=5)
    page.keyboard.press("Enter")
    page.wait_for_url(shop.sandbox.base_url + "/checkout/**")
    assert [o["quantity"] for o in orders_of(shop, drop)] == [2]
    assert browser.hosts() == allowed_hosts(shop)



def test_the_page_loads_without_a_console_error(shop, browser):
    """Everything the page asks for answers, its icon too (/favicon.ico, asked for after the load)."""
    drop = shop.api.create_drop(name="Quiet page", price=700_000, total_stock=2)
    page, card = open_shop(shop, browser, drop)
    expect(card.locator(".price")).to_have_text("700.000\u00a0₫")
    expect(card.get_by_role("button", name="Buy")).to_be_enabled()
    statuses = icon_statuses(browser, shop.server)
    assert browser.console_errors == []
    assert statuses and set(statuses) == {200}, statuses
