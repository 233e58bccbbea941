"""What the browser tests share: finding a drop's card, reading the database, waiting on the page."""

from __future__ import annotations

import json
import time
from typing import Any

from live_server import Server
from payments_env import Shop

from dropsvc import Engine

POLL_WAIT_MS = 6_000  # the page polls every 1.5 s: a change shows within a poll or two
ICON_WAIT_S = 5.0
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
START_IN_MS = 3_000  # a queue drop starts this soon after it is made: time to join before the start


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def allowed_hosts(shop: Shop) -> set[str]:
    """The only places the page may talk to: the service and the PayOS sandbox."""
    return {shop.server.base_url, shop.sandbox.base_url}


def card_of(page: Any, drop: dict[str, Any]) -> Any:
    """The drop's card on the shopper page."""
    return page.locator(f'li.drop[data-drop-id="{drop["id"]}"]')


def open_shop(shop: Shop, browser: Any, drop: dict[str, Any]) -> tuple[Any, Any]:
    """The shopper page open in the browser, and the drop's card on it."""
    page = browser.page
    page.goto(shop.server.base_url + "/")
    return page, card_of(page, drop)


def queue_drop(shop: Shop, **fields: Any) -> dict[str, Any]:
    """A queue drop, made through the admin API, starting in START_IN_MS unless told."""
    fields.setdefault("starts_at", now_ms() + START_IN_MS)
    return shop.api.create_drop(admission="queue", price=1_900_000, **fields)


def tickets_of(shop: Shop, drop: dict[str, Any]) -> list[dict[str, Any]]:
    """The drop's tickets, straight from the database."""
    with Engine(shop.server.db_path) as engine:
        return engine.read("SELECT state, kind, position, first_position, checked_in_at FROM tickets"
                           " WHERE drop_id = ? ORDER BY ticket_id", (drop["id"],))


def orders_of(shop: Shop, drop: dict[str, Any]) -> list[dict[str, Any]]:
    """The drop's orders, straight from the database."""
    with Engine(shop.server.db_path) as engine:
        return engine.read("SELECT user_id, quantity, status, idempotency_key FROM orders WHERE drop_id = ?"
                           " ORDER BY id", (drop["id"],))


def saved_ref(page: Any, drop: dict[str, Any]) -> str:
    """The public_ref the page keeps for the drop's reservation (waiting until the purchase's answer put it there)."""
    kept = "id => JSON.parse(localStorage.getItem('dropsvc.orders') || '{}')[id]"
    return page.wait_for_function(kept, arg=drop["id"]).json_value()


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def tab_to(page: Any, target: Any, limit: int = 30) -> int:
    """Press Tab until ``target`` has the focus; how many presses it took (AssertionError if never)."""
    handle = target.element_handle()
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("el => document.activeElement === el", handle):
            return presses
    raise AssertionError(f"{target} never got the keyboard focus in {limit} Tab presses")


def access_statuses(server: Server, route: str) -> list[int]:
    """The statuses the server's access log shows for ``route`` (a route template), in order."""
    statuses = []
    for line in server.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        fields = entry.get("fields", {}) if entry.get("event") == "access" else {}
        if fields.get("route") == route:
            statuses.append(fields["status"])
    return statuses


def icon_statuses(browser: Any, server: Server) -> list[int]:
    """Chromium asks for /favicon.ico after the load, out of Playwright's sight: wait until the server has
    answered it or an error has reached the console; the statuses it was answered with."""
    deadline = time.monotonic() + ICON_WAIT_S
    while not browser.console_errors and time.monotonic() < deadline:
        statuses = access_statuses(server, "/favicon.ico")
        if statuses:
            return statuses
        browser.page.wait_for_timeout(100)
    return access_statuses(server, "/favicon.ico")
