"""PayOS (SPEC 7, PAYOS.md): signatures and the merchant API client.

The offline sandbox is ``dropsvc.payments.sandbox``.
"""

from dropsvc.payments.client import PayOSClient
from dropsvc.payments.errors import (
    PaymentError,
    PaymentGatewayUnavailable,
    PaymentLinkConflict,
    PaymentProtocolError,
    PaymentRejected,
    PaymentSignatureError,
)
from dropsvc.payments.signature import (
    object_signature_text,
    payment_request_text,
    sign_object,
    sign_payment_request,
    verify_object,
    verify_payment_request,
)

__all__ = [
    "PayOSClient",
    "PaymentError",
    "PaymentGatewayUnavailable",
    "PaymentLinkConflict",
    "PaymentProtocolError",
    "PaymentRejected",
    "PaymentSignatureError",
    "object_signature_text",
    "payment_request_text",
    "sign_object",
    "sign_payment_request",
    "verify_object",
    "verify_payment_request",
]
