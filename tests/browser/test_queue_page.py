"""A queue drop's line on the shopper page (SPEC 11) in Chromium: the real server's background worker closes
the line at ``starts_at`` and admits; other shoppers are real buyers over HTTP with cookies of their own."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from live_server import Reply
from page_helpers import (
    PHONE,
    START_IN_MS,
    no_horizontal_scroll,
    now_ms,
    open_shop,
    queue_drop,
    saved_ref,
    tab_to,
    tickets_of,
)
from payments_env import Shop, wait_until
from playwright.sync_api import expect

from dropsvc.buyers import COOKIE_NAME

TURN_WAIT_MS = START_IN_MS + 6_000  # the start, the worker's pass (at least once a second), the page's next poll
TITLE = "Limited drop"
TURN_TITLE = "It's your turn! — Limited drop"
# Headless Chromium never hides a page (a second tab, a background target, a minimized window: all stay
# "visible"), so this test switches what the page reads from the Page Visibility API, and fires the
# browser's own visibilitychange event.
VISIBILITY_SWITCH = """(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true,
                                                                 get: () => (hidden ? 'hidden' : 'visible') });
  window.setHidden = (value) => { hidden = value; document.dispatchEvent(new Event('visibilitychange')); };
})()"""


class Shopper:
    """Another buyer, over HTTP with a buyer cookie of its own (from the page, as a browser gets it)."""

    def __init__(self, shop: Shop, drop: dict[str, Any]) -> None:
        self.api, self.path = shop.api, f"/api/drops/{drop['id']}"
        cookie = SimpleCookie(shop.api.get("/").headers["set-cookie"])[COOKIE_NAME].value
        self.cookie = {"Cookie": f"{COOKIE_NAME}={cookie}"}
        joined = self.api.post(f"{self.path}/tickets", {}, self.cookie)
        assert joined.status == 201, joined.body
        self.ticket = self.view(joined.json["ticket_id"])  # checks in: the start is minutes away at most

    def view(self, ticket_id: str | None = None) -> dict[str, Any]:
        reply = self.api.get(f"{self.path}/tickets/{ticket_id or self.ticket['ticket_id']}", self.cookie)
        assert reply.status == 200, reply.body
        return reply.json

    def buy(self) -> Reply:
        return self.api.post(f"{self.path}/purchases", {"quantity": 1},
                             {**self.cookie, "Admission-Ticket": self.ticket["token"]})


def ticket_states(shop: Shop, drop: dict[str, Any]) -> list[str]:
    return [ticket["state"] for ticket in tickets_of(shop, drop)]


def ticket_views(browser: Any, drop: dict[str, Any]) -> list[str]:
    """The page's GETs of its ticket (each one a check-in read on the server)."""
    view = re.compile(rf"/api/drops/{drop['id']}/tickets/\d+$")
    return [r.url for r in browser.requests if r.method == "GET" and view.search(r.url)]


def test_join_before_the_start_then_buy_when_the_turn_comes(shop, browser, shots):
    drop = queue_drop(shop, name="Line runner", total_stock=2)
    page, card = open_shop(shop, browser, drop)
    line = card.locator(".line-area")
    expect(card).to_have_attribute("data-state", "upcoming")
    expect(line).to_contain_text("This drop sells through a line.")
    expect(line.locator(".note")).to_have_text(re.compile(r"clearing its cookies or changing device loses it\.$"))
    expect(line.locator(".fairness code").first).to_have_text(drop["commitment"][:16] + "…")
    assert line.get_by_role("link", name="Check it").get_attribute("href") == f"/api/drops/{drop['id']}/fairness"
    expect(card.locator("form.buy")).to_be_hidden()
    shots(page, "1-join")

    line.get_by_role("button", name="Join the line").click()
    expect(line.locator(".msg-line")).to_have_text("1 in line, your place is drawn at the start.")
    expect(line.get_by_role("button", name="Leave the line")).to_be_visible()
    expect(card.locator(".countdown")).to_be_visible()
    shots(page, "2-in-line-before-the-start")

    turn = line.locator(".msg-turn")
    expect(turn).to_be_visible(timeout=TURN_WAIT_MS)
    expect(turn.locator("time")).to_have_text(re.compile(r"^(2:00|1:5\d)$"))
    expect(line.locator(".msg-warning")).to_be_hidden()
    expect(line.locator(".fairness")).to_contain_text(", seed ")  # revealed at the close
    buy = card.get_by_role("button", name="Buy")
    expect(buy).to_be_enabled()
    shots(page, "3-your-turn")

    with page.expect_request(lambda r: r.url.endswith(f"/api/drops/{drop['id']}/purchases")) as sent:
        buy.click()
    expect(card.locator(".msg-reserved")).to_contain_text("Reserved for you: 1 × Line runner")
    token = sent.value.headers.get("admission-ticket", "")
    assert re.fullmatch(r"1\.[0-9a-f]{64}\.[0-9a-f]{64}", token), token
    expect(line.locator(".msg-used")).to_have_text("You bought with your turn.")
    expect(line.get_by_role("button", name="Leave the line")).to_be_hidden()
    shots(page, "4-bought")
    # checked in before the close (the page viewed its ticket then), so never skipped as absent
    [ticket] = tickets_of(shop, drop)
    assert ticket["checked_in_at"] < drop["starts_at"], ticket
    assert (ticket["state"], ticket["kind"], ticket["position"]) == ("used", "prequeue", 1)
    assert ticket["first_position"] is None
    assert saved_ref(page, drop)
    # the line is followed through the public document; the ticket is viewed only to learn something new:
    # the check-in before the start, the place after the close, the state after the purchase
    assert len(ticket_views(browser, drop)) <= 4, ticket_views(browser, drop)
    assert browser.console_errors == []


def test_a_place_further_back_moves_up_and_then_the_line_sells_out(shop, browser, shots):
    drop = queue_drop(shop, name="Signed print", total_stock=1, admission_margin=0, starts_at=now_ms() + 1_500)
    others = [Shopper(shop, drop) for _ in range(3)]
    assert wait_until(lambda: shop.api.get(f"/api/drops/{drop['id']}/queue").json["admitted_through"] == 1)
    page, card = open_shop(shop, browser, drop)
    line = card.locator(".line-area")
    line.get_by_role("button", name="Join the line").click()  # after the close: fifo, behind the three
    place = line.locator(".place")
    expect(place).to_contain_text("Your place in line: 4. 2 people ahead of you. Estimated wait: about 4 min.")
    expect(place.locator("progress")).to_have_attribute("value", "25")
    shots(page, "1-in-line")

    page.reload()  # the place is found again: the ticket's id is kept by this browser, the ticket is its cookie's
    expect(place).to_contain_text("Your place in line: 4.")
    page.set_viewport_size(PHONE)
    assert no_horizontal_scroll(page)
    assert len(ticket_states(shop, drop)) == 4

    admitted = next(other for other in others if other.view()["state"] == "admitted")
    bought = admitted.buy()
    assert bought.status == 201, bought.body
    shop.sandbox.pay(shop.link_id(shop.checkout(bought.json["public_ref"])))  # the last unit is paid: finished
    sold_out = line.locator(".msg-sold_out")
    expect(sold_out).to_have_text("Sold out: the line has finished and every unit is sold.", timeout=6_000)
    expect(line.get_by_role("button", name="Leave the line")).to_be_hidden()
    expect(card.locator("form.buy")).to_be_hidden()
    shots(page, "2-sold-out")
    assert wait_until(lambda: ticket_states(shop, drop).count("sold_out") == 3)


def test_the_turn_shows_in_a_hidden_tabs_title_and_warns_before_it_ends(shop, browser, shots):
    drop = queue_drop(shop, name="Short window", total_stock=1, admit_seconds=33)
    page = browser.page
    page.add_init_script(VISIBILITY_SWITCH)
    page, card = open_shop(shop, browser, drop)
    card.get_by_role("button", name="Join the line").click()
    expect(card.locator(".msg-line")).to_be_visible()
    page.evaluate("setHidden(true)")  # the shopper went to another tab

    page.wait_for_function(f"document.title === {TURN_TITLE!r}", timeout=TURN_WAIT_MS)
    page.evaluate("setHidden(false)")  # and came back
    expect(page).to_have_title(TITLE)
    warning = card.get_by_role("alert").filter(has_text="left")
    expect(warning).to_have_text("Less than a minute left to buy.")
    shots(page, "1-under-a-minute")
    expect(warning).to_have_text("Less than 30 seconds left: buy now or your turn passes to the next in line.",
                                 timeout=6_000)
    expect(card.get_by_role("button", name="Buy")).to_be_enabled()
    shots(page, "2-under-30-seconds")


def test_a_turn_used_in_another_tab_is_refused_in_words(shop, browser, shots):
    drop = queue_drop(shop, name="Two tabs", total_stock=2)
    page, card = open_shop(shop, browser, drop)
    card.get_by_role("button", name="Join the line").click()
    expect(card.locator(".msg-line")).to_be_visible()
    other = browser.context.new_page()  # the same browser: its cookie, and the ticket's id kept for the drop
    other.goto(shop.server.base_url + "/")
    other_card = other.locator(f'li.drop[data-drop-id="{drop["id"]}"]')
    expect(other_card.locator(".msg-line")).to_have_text("1 in line, your place is drawn at the start.")

    for tab in (card, other_card):
        expect(tab.get_by_role("button", name="Buy")).to_be_enabled(timeout=TURN_WAIT_MS)
    other_card.get_by_role("button", name="Buy").click()
    expect(other_card.locator(".msg-reserved")).to_be_visible()
    card.get_by_role("button", name="Buy").click()
    refusal = card.locator(".msg-not_admitted")
    expect(refusal).to_have_text("You have already bought with this turn (maybe in another tab).")
    expect(card.locator(".msg-used")).to_be_visible()
    shots(page, "not-admitted-used")
    assert ticket_states(shop, drop) == ["used"]


def test_joining_needs_the_cookie_and_the_keyboard_leaves_the_line(shop, browser, shots):
    drop = queue_drop(shop, name="Far drop", total_stock=5, starts_at=now_ms() + 3_600_000)
    page, card = open_shop(shop, browser, drop)
    join = card.get_by_role("button", name="Join the line")
    expect(join).to_be_visible()
    browser.context.clear_cookies()  # a browser that dropped the buyer cookie
    join.click()
    expect(card.locator(".line-area .msg-error")).to_have_text(
        "This page needs its cookie to know you: allow cookies for this site, then reload.")
    shots(page, "1-no-cookie", ("phone",))
    assert ticket_states(shop, drop) == []

    page.reload()
    page.set_viewport_size(PHONE)
    tab_to(page, join)
    page.keyboard.press("Enter")
    expect(card.locator(".msg-line")).to_have_text("1 in line, your place is drawn at the start.")
    expect(card.locator(".line-area .msg-error")).to_be_hidden()
    leave = card.get_by_role("button", name="Leave the line")
    tab_to(page, leave, limit=5)
    page.keyboard.press("Enter")  # leaving is final: the page asks first, the answer focused
    ask = card.get_by_role("group", name="Leave the line")
    expect(ask).to_contain_text("Leave the line for good? You can't join it again")
    expect(ask.get_by_role("button", name="Yes, leave")).to_be_focused()
    expect(leave).to_be_hidden()
    shots(page, "2-leave-asked", ("phone",))
    page.keyboard.press("Escape")  # stays: nothing changes, the focus back on Leave
    expect(ask).to_be_hidden()
    expect(leave).to_be_focused()
    ask_again = card.get_by_role("button", name="Stay in line")
    page.keyboard.press("Enter")
    ask_again.click()
    expect(leave).to_be_focused()
    assert ticket_states(shop, drop) == ["waiting"]
    page.keyboard.press("Enter")
    expect(ask.get_by_role("button", name="Yes, leave")).to_be_focused()
    page.keyboard.press("Enter")
    expect(card.locator(".msg-left")).to_have_text("You left the line.")
    expect(join).to_be_hidden()
    assert no_horizontal_scroll(page)
    shots(page, "3-left", ("phone",))
    assert ticket_states(shop, drop) == ["left"]
