"""POST /api/orders/{public_ref}/checkout and POST /webhooks/payos (SPEC 7)."""

from __future__ import annotations

from typing import Any

import falcon

from dropsvc.checkout import Checkout, CheckoutRefused, PaymentsUnavailable
from dropsvc.http.errors import ApiError
from dropsvc.http.resources.common import read_json_object, send_json
from dropsvc.http.resources.orders import order_not_found, public_order
from dropsvc.ledger import Engine
from dropsvc.ledger.payments import apply_payment
from dropsvc.logs import get_logger
from dropsvc.payments import (
    PaymentGatewayUnavailable,
    PaymentLinkConflict,
    PaymentProtocolError,
    PaymentRejected,
    PaymentSignatureError,
    verify_object,
)

WEBHOOK_BODY_LIMIT = 16 * 1024
# what a verified callback's data must carry, and of which type, before it is applied
WEBHOOK_FIELDS = (("orderCode", int), ("amount", int), ("reference", str), ("paymentLinkId", str), ("code", str))
CHECKOUT_REFUSALS = {
    "paid": "the order is already paid",
    "expired": "the reservation expired before payment",
    "cancelled": "the order was cancelled",
    "refund_required": "the order awaits a refund",
}

log = get_logger()


class OrderCheckout:
    """Create (201) or return (200) the order's PayOS payment link."""

    def __init__(self, checkout: Checkout) -> None:
        self.checkout = checkout

    def on_post(self, req: falcon.Request, resp: falcon.Response, public_ref: str) -> None:
        try:
            order, created = self.checkout.link_for(public_ref)
        except CheckoutRefused as refused:
            if refused.code == "order_not_found":
                raise order_not_found(public_ref) from None
            raise ApiError(409, refused.code, CHECKOUT_REFUSALS.get(refused.code, refused.code)) from None
        except PaymentsUnavailable:
            raise ApiError(503, "payments_unavailable", "payments are not configured on this service") from None
        except PaymentGatewayUnavailable:
            raise ApiError(503, "payment_gateway_unavailable", "the payment gateway does not answer; retry shortly",
                           headers={"Retry-After": "2"}) from None
        except (PaymentRejected, PaymentLinkConflict) as error:
            log.warning("payment_link_refused", public_ref=public_ref, error=type(error).__name__, detail=str(error))
            raise ApiError(502, "payment_gateway_refused", "the payment gateway refused the payment link") from None
        except (PaymentSignatureError, PaymentProtocolError) as error:  # PayOS said something wrong
            log.error("payment_gateway_error", public_ref=public_ref, error=type(error).__name__, detail=str(error))
            raise ApiError(502, "payment_gateway_error", "the payment gateway answered wrongly") from None
        send_json(resp, public_order(order), status=201 if created else 200)


class PayOSWebhook:
    """Verify the signature first; then record and apply the callback once (always 2xx after)."""

    def __init__(self, engine: Engine, checksum_key: str | None) -> None:
        self.engine = engine
        self.checksum_key = checksum_key

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.checksum_key:
            raise ApiError(503, "payments_unavailable", "payments are not configured on this service")
        body = read_json_object(req, WEBHOOK_BODY_LIMIT)
        data = body.get("data")
        if not verify_object(self.checksum_key, data, body.get("signature")):
            log.warning("webhook_refused", reason="bad_signature")
            raise ApiError(400, "invalid_signature", "the webhook signature does not verify")
        problem = shape_problem(data)
        if problem:
            raise ApiError(400, "invalid_webhook", problem)
        result = apply_payment(self.engine, body)
        log.info("webhook", order_code=data["orderCode"], reference=data["reference"], action=result.action,
                 replayed=result.replayed)
        send_json(resp, {"success": True, "action": result.action, "replayed": result.replayed})


def shape_problem(data: Any) -> str | None:
    """Why a verified callback's data cannot be applied, or None."""
    for name, kind in WEBHOOK_FIELDS:
        value = data.get(name)
        if type(value) is not kind:
            return f"data.{name} must be {'an integer' if kind is int else 'a string'}"
    if not 0 < data["orderCode"] <= 2**53:
        return "data.orderCode is out of range"
    if not data["reference"] or len(data["reference"]) > 256:
        return "data.reference must be 1 to 256 characters"
    return None
