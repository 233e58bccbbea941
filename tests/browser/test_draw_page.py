"""A draw on the shopper page (SPEC 11, ``admission: draw``) in Chromium: enter the draw, "you're in the
draw", then "you won" and buy, or "not this time" with the place on the waitlist moving up as units come
back; the outcome in a hidden tab's title. The real server's background worker makes the draw."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from page_helpers import now_ms, open_shop
from payments_env import Shop
from playwright.sync_api import expect
from test_queue_page import TITLE, VISIBILITY_SWITCH, Shopper, tickets_of

from dropsvc import Engine

DRAW_WAIT_MS = 8_000  # the close, the worker's pass (at least once a second), the page's next poll
WON = "You won: buy within 1:00."  # an hour, in h:mm


def draw_drop(shop: Shop, opens_in_ms: int, entries_ms: int, **fields: Any) -> dict[str, Any]:
    starts_at = now_ms() + opens_in_ms
    return shop.api.create_drop(admission="draw", price=3_200_000, starts_at=starts_at,
                                entries_close_at=starts_at + entries_ms, **fields)


def draw_order(shop: Shop, drop: dict[str, Any], entries: int) -> list[int]:
    """Ticket ids 1..entries in the order the drop's seed will draw them (the test reads the secret seed
    from the database, as only its operator could, to know the outcome in advance)."""
    with Engine(shop.server.db_path) as engine:
        seed = engine.read("SELECT seed FROM drop_seeds WHERE drop_id = ?", (drop["id"],))[0]["seed"]
    return sorted(range(1, entries + 1), key=lambda n: hmac.new(seed, str(n).encode(), hashlib.sha256).hexdigest())


def test_enter_the_draw_win_and_buy(shop, browser, shots):
    drop = draw_drop(shop, 1_500, 3_000, name="Raffle jacket", total_stock=1)
    page = browser.page
    page.add_init_script(VISIBILITY_SWITCH)
    page, card = open_shop(shop, browser, drop)
    line = card.locator(".line-area")
    enter = line.get_by_role("button", name="Enter the draw")
    expect(card).to_have_attribute("data-state", "upcoming")
    expect(line).to_contain_text("Entries open at")
    expect(line).to_contain_text("This drop is a draw: enter before")
    expect(card.locator(".countdown")).to_contain_text("Entries open in")
    expect(enter).to_be_disabled()
    shots(page, "1-before-entries", ("desktop",))

    expect(enter).to_be_enabled(timeout=4_000)  # entries open at starts_at
    expect(line).not_to_contain_text("Entries open at")
    expect(card.locator(".countdown")).to_contain_text("The draw in")
    enter.click()
    expect(line.locator(".msg-line")).to_have_text(re.compile(r"^You're in the draw: 1 entry so far\. The draw is at "))
    expect(line.get_by_role("button", name="Leave the draw")).to_be_visible()
    expect(card).to_have_attribute("data-state", "upcoming")  # the drop sells from the draw on
    shots(page, "2-in-the-draw")
    page.evaluate("setHidden(true)")  # the shopper went to another tab

    page.wait_for_function(f"document.title === {'You won! — ' + TITLE!r}", timeout=DRAW_WAIT_MS)
    page.evaluate("setHidden(false)")
    expect(page).to_have_title(TITLE)
    expect(line.locator(".msg-turn")).to_have_text(WON)
    expect(line.locator(".fairness")).to_contain_text(", seed ")  # revealed at the draw
    buy = card.get_by_role("button", name="Buy")
    expect(buy).to_be_enabled()
    shots(page, "3-you-won")
    buy.click()
    expect(card.locator(".msg-reserved")).to_contain_text("Reserved for you: 1 × Raffle jacket")
    [ticket] = tickets_of(shop, drop)
    assert (ticket["state"], ticket["kind"], ticket["position"]) == ("used", "entry", 1)
    assert browser.console_errors == []


def test_not_this_time_then_the_waitlist_moves_up(shop, browser, shots):
    drop = draw_drop(shop, 0, 4_000, name="Numbered print", total_stock=1)
    order = draw_order(shop, drop, 3)
    mine = order[-1]  # the page enters as the ticket the seed puts last: number 2 on the waitlist
    others = {n: Shopper(shop, drop) for n in range(1, mine)}
    page = browser.page
    page.add_init_script(VISIBILITY_SWITCH)
    page, card = open_shop(shop, browser, drop)
    line = card.locator(".line-area")
    line.get_by_role("button", name="Enter the draw").click()
    expect(line.locator(".msg-line")).to_contain_text("You're in the draw")
    others |= {n: Shopper(shop, drop) for n in range(mine + 1, 4)}
    page.evaluate("setHidden(true)")

    page.wait_for_function(f"document.title === {'Not this time — ' + TITLE!r}", timeout=DRAW_WAIT_MS)
    page.evaluate("setHidden(false)")
    expect(page).to_have_title(TITLE)
    waitlist = line.locator(".msg-waitlist")
    expect(waitlist).to_have_text("Not this time (you are number 2 on the waitlist).")
    expect(card.locator("form.buy")).to_be_hidden()
    shots(page, "1-not-this-time")

    for gone, number in ((order[0], 1), (order[1], None)):  # the winner leaves, then the next: units come back
        shopper = others[gone]
        left = shopper.api.request("DELETE", f"{shopper.path}/tickets/{shopper.ticket['ticket_id']}",
                                   headers=shopper.cookie)
        assert left.status == 200, left.body
        if number is not None:
            expect(waitlist).to_have_text(f"Not this time (you are number {number} on the waitlist).",
                                          timeout=DRAW_WAIT_MS)
    expect(line.locator(".msg-turn")).to_have_text(WON, timeout=DRAW_WAIT_MS)
    expect(card.get_by_role("button", name="Buy")).to_be_enabled()
    shots(page, "2-won-from-the-waitlist")
    assert [ticket["state"] for ticket in tickets_of(shop, drop)] == [
        {order[0]: "left", order[1]: "left", mine: "admitted"}[n] for n in range(1, 4)]
    assert browser.console_errors == []
