"""Proof of work to join a line on the shopper page (SPEC 11, ``challenge: pow``) in Chromium: the ALTCHA widget
(from npm, served by the service) fetches nothing itself; the page gets a challenge for its buyer cookie, the
widget solves it in Web Workers under the page's Content-Security-Policy, and the join carries its payload to
the real server, which checks it. Low costs keep each solve well under a second."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

from page_helpers import PHONE, allowed_hosts, no_horizontal_scroll, open_shop, queue_drop, tab_to, tickets_of
from playwright.sync_api import expect

FAR_START_MS = 3_600_000  # the line stays open for joins for the whole test
CHECKING = "Checking you're a person… This takes a few seconds: keep this page open."
IN_LINE = "1 in line, your place is drawn at the start."
NO_WORKER = "delete window.Worker"  # an init script: a browser without Web Workers


def pow_drop(shop: Any, algorithm: str = "SHA-256", cost: int = 1, **fields: Any) -> dict[str, Any]:
    fields.setdefault("starts_at", int(time.time() * 1000) + FAR_START_MS)
    return queue_drop(shop, total_stock=3, challenge="pow", pow_algorithm=algorithm, pow_cost=cost, **fields)


def calls(browser: Any, drop: dict[str, Any], method: str, suffix: str) -> list[Any]:
    """The page's requests to ``/api/drops/{id}{suffix}``."""
    path = f"/api/drops/{drop['id']}{suffix}"
    return [r for r in browser.requests if r.method == method and r.url.split("?")[0].endswith(path)]


def expect_in_line(card: Any) -> None:
    """The card shows its place in the line (the message is rendered, hidden, before a join)."""
    expect(card.locator(".msg-line")).to_be_visible()
    expect(card.locator(".msg-line")).to_have_text(IN_LINE)


def sent_payload(request: Any) -> dict[str, Any]:
    """The widget's payload that a join carried, decoded."""
    return json.loads(base64.b64decode(json.loads(request.post_data)["altcha"]))


def test_the_widget_solves_a_challenge_and_the_page_joins_with_it(shop, browser, shots):
    drop = pow_drop(shop, name="Proof runner", algorithm="PBKDF2/SHA-256", cost=20)
    page, card = open_shop(shop, browser, drop)
    line = card.locator(".line-area")
    join = line.get_by_role("button", name="Join the line")
    expect(line.locator(".proof-note")).to_contain_text("Joining runs a short check that you are a person")
    expect(line.locator("altcha-widget")).to_be_hidden()
    shots(page, "1-before")

    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(f"/drops/{drop['id']}/tickets")) as sent:
        join.click()
        status = line.get_by_role("status").filter(has_text="Checking")
        expect(status).to_have_text(CHECKING)
        expect(line.locator("altcha-widget")).to_be_visible()
        shots(page, "2-checking", ("desktop",))
    expect_in_line(card)
    payload = sent_payload(sent.value)
    parameters = payload["challenge"]["parameters"]
    assert (parameters["algorithm"], parameters["cost"]) == ("PBKDF2/SHA-256", 20)
    assert 500 <= payload["solution"]["counter"] < 1_500  # the service's deterministic effort
    [challenge] = calls(browser, drop, "GET", "/challenge")  # one challenge, fetched by the page, for this join
    assert challenge.response().status == 200
    [ticket] = tickets_of(shop, drop)
    assert (ticket["state"], ticket["kind"]) == ("waiting", "prequeue")
    expect(line.locator("altcha-widget")).to_have_count(0)  # the check is done with
    shots(page, "3-joined")
    assert browser.hosts() <= allowed_hosts(shop)
    assert browser.console_errors == []  # a Content-Security-Policy violation would be one


def test_keyboard_only_on_a_phone(shop, browser, shots):
    drop = pow_drop(shop, name="Keyboard proof")
    page, card = open_shop(shop, browser, drop)
    page.set_viewport_size(PHONE)
    join = card.get_by_role("button", name="Join the line")
    tab_to(page, join)
    page.keyboard.press("Enter")
    # what a screen reader hears: the polite status line, and the widget's checkbox named by its label
    expect(card.get_by_role("status").filter(has_text="Checking")).to_have_text(CHECKING)
    expect(card.get_by_role("checkbox", name="Checking…")).to_be_visible()
    expect_in_line(card)
    assert len(tickets_of(shop, drop)) == 1
    tab_to(page, card.get_by_role("button", name="Leave the line"), limit=5)
    assert no_horizontal_scroll(page)
    shots(page, "joined", ("phone",))
    assert browser.console_errors == []


def test_a_browser_without_web_workers_is_told_what_it_needs(shop, browser, shots):
    drop = pow_drop(shop, name="No workers")
    browser.page.add_init_script(NO_WORKER)
    page, card = open_shop(shop, browser, drop)
    unsupported = card.locator(".proof-unsupported")
    expect(unsupported).to_have_text(re.compile(r"^Joining this line needs a browser that runs Web Workers"))
    expect(card.get_by_role("button", name="Join the line")).to_be_disabled()
    expect(card.locator(".proof-note")).to_be_hidden()
    shots(page, "message")
    assert calls(browser, drop, "GET", "/challenge") == [] and tickets_of(shop, drop) == []

    fresh = browser.context.new_page()  # and one without JavaScript at all
    browser.context.new_cdp_session(fresh).send("Emulation.setScriptExecutionDisabled", {"value": True})
    fresh.goto(shop.server.base_url + "/")
    expect(fresh.locator(".no-script")).to_contain_text("This page needs JavaScript")
    expect(fresh.locator(".no-script")).to_contain_text("which needs Web Workers")
    shots(fresh, "no-javascript")


def test_an_expired_solution_is_refused_in_words_and_a_new_check_joins(shop, browser, shots):
    drop = pow_drop(shop, name="Slow solver")
    page, card = open_shop(shop, browser, drop)
    tickets = f"**/api/drops/{drop['id']}/tickets"

    def expire(route: Any) -> None:
        """The join as if the widget had taken longer than the challenge lives (10 minutes): its expiry moved to
        the past; the real server refuses it."""
        payload = sent_payload(route.request)
        payload["challenge"]["parameters"]["expiresAt"] = int(time.time()) - 1
        route.continue_(post_data=json.dumps({"altcha": base64.b64encode(json.dumps(payload).encode()).decode()}))
        page.unroute(tickets)

    page.route(tickets, expire)
    card.get_by_role("button", name="Join the line").click()
    error = card.get_by_role("alert").filter(has_text="check")
    expect(error).to_have_text("The check took too long and expired. Try again: a new check takes a few seconds.")
    expect(card.locator("altcha-widget")).to_be_hidden()  # its checkbox would solve for nothing: the button retries
    retry = card.get_by_role("button", name="Try again")
    expect(retry).to_be_enabled()
    shots(page, "1-expired")
    assert tickets_of(shop, drop) == []

    retry.click()
    expect_in_line(card)
    expect(error).to_be_hidden()
    assert [r.response().status for r in calls(browser, drop, "POST", "/tickets")] == [422, 201]
    assert len(calls(browser, drop, "GET", "/challenge")) == 2  # the retry solved a fresh challenge
    assert len(tickets_of(shop, drop)) == 1
    shots(page, "2-joined", ("phone",))
