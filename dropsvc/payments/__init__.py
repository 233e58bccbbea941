"""PayOS: signatures, the merchant API client, and an offline sandbox (SPEC 7, PAYOS.md)."""

from dropsvc.payments.client import PayOSClient
from dropsvc.payments.errors import (
    PaymentError,
    PaymentGatewayUnavailable,
    PaymentLinkConflict,
    PaymentProtocolError,
    PaymentRejected,
    PaymentSignatureError,
)
from dropsvc.payments.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_CHECKSUM_KEY,
    SANDBOX_CLIENT_ID,
    PayOSSandbox,
)
from dropsvc.payments.sandbox_state import SandboxError
from dropsvc.payments.signature import (
    object_signature_text,
    payment_request_text,
    sign_object,
    sign_payment_request,
    verify_object,
    verify_payment_request,
)

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_CHECKSUM_KEY",
    "SANDBOX_CLIENT_ID",
    "PayOSClient",
    "PayOSSandbox",
    "PaymentError",
    "PaymentGatewayUnavailable",
    "PaymentLinkConflict",
    "PaymentProtocolError",
    "PaymentRejected",
    "PaymentSignatureError",
    "SandboxError",
    "object_signature_text",
    "payment_request_text",
    "sign_object",
    "sign_payment_request",
    "verify_object",
    "verify_payment_request",
]
