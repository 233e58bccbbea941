"""The service's side of PayOS: a payment link per reserved order, best-effort link cancels.

External I/O never happens inside a write transaction (SPEC 5): the link is
created first, then stored with a conditional UPDATE that only fills an
empty slot of a still-reserved order, so two racing checkouts end with one
stored link (PayOS itself refuses a second link for one orderCode: code 231,
and the client then reuses the first).
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from dropsvc.config import Config
from dropsvc.ledger import Engine
from dropsvc.logs import EventLogger, get_logger
from dropsvc.payments import PaymentError, PayOSClient

DESCRIPTION_LIMIT = 25  # PAYOS.md: keep it short, some bank accounts allow less
CANCEL_QUEUE_LIMIT = 1000


class CheckoutRefused(Exception):
    """The order cannot be paid (any more): ``code`` is its status or ``order_not_found``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class PaymentsUnavailable(Exception):
    """No PayOS configured: checkout cannot work on this instance."""


def payos_client(config: Config) -> PayOSClient | None:
    """The PayOS client from config, or None when payments are not configured."""
    if not (config.payos_base_url and config.payos_client_id and config.payos_api_key
            and config.payos_checksum_key):
        return None
    return PayOSClient(config.payos_base_url, config.payos_client_id, config.payos_api_key,
                       config.payos_checksum_key)


class Checkout:
    """Creates or returns an order's payment link; cancels links in the background."""

    def __init__(self, engine: Engine, config: Config, client: PayOSClient | None,
                 log: EventLogger | None = None) -> None:
        self.engine = engine
        self.config = config
        self.client = client
        self.log = log or get_logger()
        self._cancels: queue.Queue[tuple[str, str]] = queue.Queue(CANCEL_QUEUE_LIMIT)
        self._canceller: threading.Thread | None = None

    def link_for(self, public_ref: str) -> tuple[dict[str, Any], bool]:
        """(order with its link, created now?) or CheckoutRefused / PaymentsUnavailable / PaymentError."""
        order = self.engine.get_order(public_ref)
        if order is None:
            raise CheckoutRefused("order_not_found")
        if order["status"] != "reserved":
            raise CheckoutRefused(order["status"])
        if order["checkout_url"]:
            if self._link_cancelled_at_payos(order):
                # the shopper cancelled on the PayOS page, and PayOS makes no second link for one
                # orderCode: the order can no longer be paid, so its hold goes back on sale
                self.engine.cancel(public_ref)
                self.log.info("order_cancelled_at_payos", order_code=order["order_code"])
                raise CheckoutRefused("cancelled")
            return order, False
        if self.client is None:
            raise PaymentsUnavailable()
        data = self.client.create_link(
            order["order_code"], order["amount"], f"Order {order['order_code']}"[:DESCRIPTION_LIMIT],
            return_url=self.config.payos_return_url.format(public_ref=public_ref),
            cancel_url=self.config.payos_cancel_url.format(public_ref=public_ref),
            expired_at=order["expires_at"] // 1000)

        stored = self.engine.store_payment_link(order["id"], data["paymentLinkId"], data["checkoutUrl"])
        order = self.engine.get_order_by_id(order["id"])
        if not stored and not order["checkout_url"]:
            raise CheckoutRefused(order["status"])  # it stopped being reserved meanwhile
        self.log.info("payment_link", order_code=order["order_code"], created=bool(stored),
                      payment_link_id=order["payment_link_id"])
        return order, bool(stored)

    def _link_cancelled_at_payos(self, order: dict[str, Any]) -> bool:
        """Whether PayOS says the stored link was cancelled (False when PayOS can't be asked)."""
        if self.client is None or not order["payment_link_id"]:
            return False
        try:
            return self.client.get_link(order["payment_link_id"]).get("status") == "CANCELLED"
        except (PaymentError, ValueError) as error:
            self.log.warning("payment_link_state_unknown", payment_link_id=order["payment_link_id"],
                             error=type(error).__name__)
            return False

    # -- best-effort cancel of a link whose order was cancelled ------------------------------

    def cancel_link_later(self, order: dict[str, Any]) -> None:
        """Queue the PayOS cancel of the order's link (never blocks the request)."""
        if self.client is None or not order.get("payment_link_id"):
            return
        if self._canceller is None:
            self._canceller = threading.Thread(target=self._cancel_links, name="payos-cancels", daemon=True)
            self._canceller.start()
        try:
            self._cancels.put_nowait((order["payment_link_id"], order["public_ref"]))
        except queue.Full:
            self.log.warning("payment_link_cancel_dropped", payment_link_id=order["payment_link_id"])

    def _cancel_links(self) -> None:
        while True:
            link_id, public_ref = self._cancels.get()
            try:
                self.client.cancel_link(link_id, "order cancelled by the shopper")
                self.log.info("payment_link_cancelled", payment_link_id=link_id)
            except (PaymentError, ValueError) as error:
                self.log.warning("payment_link_cancel_failed", payment_link_id=link_id,
                                 error=type(error).__name__, detail=str(error))
            finally:
                self._cancels.task_done()

    def wait_cancels(self) -> None:
        """Block until queued link cancels are done (tests, shutdown)."""
        self._cancels.join()
