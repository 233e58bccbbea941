"""What the browser tests share: finding a drop's card, reading the database, waiting on the page."""

from __future__ import annotations

import time
from typing import Any

from payments_env import Shop

from dropsvc import Engine

POLL_WAIT_MS = 6_000  # the page polls every 1.5 s: a change shows within a poll or two
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


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
