"""A running service wired to a PayOS sandbox, both on loopback (for the payment tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from live_server import Api, Server, launch
from payos_fixtures import TEST_API_KEY, TEST_CHECKSUM_KEY, TEST_CLIENT_ID, make_sandbox

from dropsvc import Engine
from dropsvc.payments.sandbox import PayOSSandbox


@dataclass
class Shop:
    server: Server
    sandbox: PayOSSandbox
    api: Api

    def order(self, public_ref: str) -> dict[str, Any]:
        reply = self.api.get(f"/api/orders/{public_ref}")
        assert reply.status == 200, reply.body
        return reply.json

    def checkout(self, public_ref: str) -> dict[str, Any]:
        reply = self.api.post(f"/api/orders/{public_ref}/checkout")
        assert reply.status in (200, 201), reply.body
        return reply.json

    def link_id(self, order: dict[str, Any]) -> str:
        return order["checkout_url"].rsplit("/", 1)[1]

    def events(self) -> list[dict[str, Any]]:
        with Engine(self.server.db_path) as engine:
            return engine.read("SELECT order_code, reference, order_id, action FROM payment_events ORDER BY id")

    def check(self) -> list[str]:
        with Engine(self.server.db_path) as engine:
            return engine.check()


def open_shop(directory: Path) -> Shop:
    """A sandbox first (its URL goes into the service's config), then the service."""
    sandbox = make_sandbox().start()
    server = launch(directory, env={"PAYOS_BASE_URL": sandbox.base_url, "PAYOS_CLIENT_ID": TEST_CLIENT_ID,
                                    "PAYOS_API_KEY": TEST_API_KEY, "PAYOS_CHECKSUM_KEY": TEST_CHECKSUM_KEY})
    sandbox.webhook_url = f"{server.base_url}/webhooks/payos"
    return Shop(server, sandbox, Api(server))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
