"""Typed PayOS failures: one class per way a call can fail. Messages never carry a key."""

from __future__ import annotations


class PaymentError(Exception):
    """Base class of every PayOS client failure."""


class PaymentGatewayUnavailable(PaymentError):
    """PayOS answered 5xx, timed out or could not be reached, even after the retries."""


class PaymentRejected(PaymentError):
    """PayOS answered with an error code (anything but ``"00"``), or refused the call with a 4xx."""

    def __init__(self, code: str, desc: str, http_status: int | None = None) -> None:
        self.code = code
        self.desc = desc
        self.http_status = http_status
        super().__init__(f"PayOS rejected the request: code {code}: {desc}")


class PaymentSignatureError(PaymentError):
    """An answer's ``data`` is unsigned or its signature does not verify with the checksum key."""


class PaymentLinkConflict(PaymentError):
    """The orderCode already has a link (code 231) that cannot be reused (other amount, or not PENDING)."""

    def __init__(self, order_code: int, message: str, link: dict | None = None) -> None:
        self.order_code = order_code
        self.link = link
        super().__init__(message)


class PaymentProtocolError(PaymentError):
    """A 2xx answer that is not a PayOS envelope (not JSON, no code, no data object)."""
