"""A small PayOS merchant API client (PAYOS.md section 1), stdlib HTTP only.

    client = PayOSClient(base_url, client_id, api_key, checksum_key)
    link = client.create_link(order_code=42, amount=2000, description="DROP 42",
                              return_url="https://shop/orders/x", cancel_url="https://shop/orders/x")
    link["checkoutUrl"], link["paymentLinkId"]

Every answer must be a ``{"code": "00", "data": {...}, "signature": ...}``
envelope whose ``data`` verifies with the checksum key. 5xx answers,
timeouts and connection errors are retried with exponential backoff
(``backoff``, then doubling); 4xx answers and PayOS error codes are not.
Failures raise the typed errors of ``dropsvc.payments.errors``; no message
or log line ever carries the API key or the checksum key.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from dropsvc.logs import get_logger
from dropsvc.payments.errors import (
    PaymentGatewayUnavailable,
    PaymentLinkConflict,
    PaymentProtocolError,
    PaymentRejected,
    PaymentSignatureError,
)
from dropsvc.payments.signature import sign_payment_request, verify_object

CREATE_PATH = "/v2/payment-requests"
CODE_OK = "00"
CODE_LINK_EXISTS = "231"
MAX_DESC = 300
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PAYOS_CHECKOUT = "https://pay.payos.vn/web/{id}"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _link_ref(order_code_or_id: int | str) -> str:
    """The path segment naming a link: a positive orderCode or a non-empty paymentLinkId."""
    if isinstance(order_code_or_id, str):
        if not order_code_or_id or len(order_code_or_id) > 200:
            raise ValueError("a paymentLinkId must be a non-empty string")
        return urllib.parse.quote(order_code_or_id, safe="")
    return str(_positive_int("order_code", order_code_or_id))


class PayOSClient:
    """Creates, reads and cancels PayOS payment links; see the module docstring."""

    def __init__(self, base_url: str, client_id: str, api_key: str, checksum_key: str,
                 timeout: float = 5.0, retries: int = 3, *, backoff: float = 0.2,
                 checkout_url_template: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")
        for name, value in (("client_id", client_id), ("api_key", api_key), ("checksum_key", checksum_key)):
            # sent in headers or used as a key: printable ASCII, never echoed
            if not isinstance(value, str) or not value or not (value.isascii() and value.isprintable()):
                raise ValueError(f"{name} must be a non-empty printable ASCII string")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._api_key = api_key
        self._checksum_key = checksum_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        if checkout_url_template is None:
            checkout_url_template = PAYOS_CHECKOUT if host.endswith("payos.vn") else self.base_url + "/checkout/{id}"
        self.checkout_url_template = checkout_url_template
        # loopback (the sandbox) never goes through an HTTP proxy from the environment
        handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK_HOSTS else []
        self._opener = urllib.request.build_opener(*handlers)
        self._log = get_logger()

    def __repr__(self) -> str:
        return f"PayOSClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    # -- public API -----------------------------------------------------------------------------

    def create_link(self, order_code: int, amount: int, description: str, return_url: str, cancel_url: str,
                    expired_at: int | None = None, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create the link for ``order_code``; answer ``data`` (checkoutUrl, paymentLinkId, qrCode, ...).

        If PayOS says the orderCode already has a link (code 231), that link is
        fetched and returned (with ``paymentLinkId``, ``checkoutUrl`` and
        ``reused: True``) when its amount matches and it is still PENDING;
        otherwise ``PaymentLinkConflict`` is raised.
        """
        _positive_int("order_code", order_code)
        _positive_int("amount", amount)
        for name, value in (("description", description), ("return_url", return_url), ("cancel_url", cancel_url)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        body: dict[str, Any] = {
            "orderCode": order_code, "amount": amount, "description": description,
            "cancelUrl": cancel_url, "returnUrl": return_url,
            "signature": sign_payment_request(self._checksum_key, amount, cancel_url, description,
                                              order_code, return_url),
        }
        if expired_at is not None:
            body["expiredAt"] = _positive_int("expired_at", expired_at)
        if items:
            body["items"] = items
        try:
            data = self._call("POST", CREATE_PATH, body)
        except PaymentRejected as exc:
            if exc.code != CODE_LINK_EXISTS:
                raise
            return self._reuse(order_code, amount)
        if data.get("orderCode") != order_code or data.get("amount") != amount:
            raise PaymentProtocolError(f"PayOS answered a link for another order or amount (orderCode {order_code})")
        return data

    def get_link(self, order_code_or_id: int | str) -> dict[str, Any]:
        """The link's state: id, orderCode, amount, amountPaid, amountRemaining, status, transactions, ..."""
        return self._call("GET", f"{CREATE_PATH}/{_link_ref(order_code_or_id)}")

    def cancel_link(self, order_code_or_id: int | str, reason: str | None = None) -> dict[str, Any]:
        """Cancel a PENDING link; answers its new state."""
        if reason is not None and not isinstance(reason, str):
            raise ValueError("reason must be a string")
        return self._call("POST", f"{CREATE_PATH}/{_link_ref(order_code_or_id)}/cancel",
                          {"cancellationReason": reason})

    def checkout_url(self, payment_link_id: str) -> str:
        """Where the shopper pays a link (PayOS's checkout page, or the sandbox's)."""
        return self.checkout_url_template.format(id=urllib.parse.quote(payment_link_id, safe=""))

    # -- internals ------------------------------------------------------------------------------

    def _reuse(self, order_code: int, amount: int) -> dict[str, Any]:
        link = self.get_link(order_code)
        status, link_amount, link_id = link.get("status"), link.get("amount"), link.get("id")
        if link_amount == amount and status == "PENDING" and isinstance(link_id, str) and link_id:
            self._log.info("payos_link_reused", order_code=order_code, payment_link_id=link_id)
            return {**link, "paymentLinkId": link_id, "checkoutUrl": self.checkout_url(link_id), "reused": True}
        raise PaymentLinkConflict(
            order_code,
            f"orderCode {order_code} already has a PayOS link that cannot be reused "
            f"(amount {link_amount!r}, wanted {amount}; status {status!r})",
            link,
        )

    def _scrub(self, text: Any) -> str:
        """A server-given text, cut short and without our secrets in it."""
        clean = str(text)[:MAX_DESC]
        for secret in (self._api_key, self._checksum_key):
            if secret and len(secret) >= 4:
                clean = clean.replace(secret, "[redacted]")
        return clean

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call with retries; the verified ``data`` of a ``"00"`` answer."""
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        attempts = self.retries + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._sleep(self.backoff * 2 ** (attempt - 2))
            try:
                status, raw = self._send(method, path, payload)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {self._scrub(exc)}"
            else:
                if status < 500:
                    return self._envelope(status, raw, method, path)
                problem = f"HTTP {status}"
            self._log.warning("payos_call_failed", method=method, path=path, attempt=attempt,
                              attempts=attempts, problem=problem)
        raise PaymentGatewayUnavailable(f"PayOS {method} {path} failed after {attempts} attempt(s): {problem}")

    def _send(self, method: str, path: str, payload: bytes | None) -> tuple[int, bytes]:
        headers = {"x-client-id": self.client_id, "x-api-key": self._api_key, "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=payload, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, exc.read()
            finally:
                exc.close()

    def _envelope(self, status: int, raw: bytes, method: str, path: str) -> dict[str, Any]:
        try:
            envelope = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            envelope = None
        if not isinstance(envelope, dict):
            if status >= 400:
                raise PaymentRejected(f"http_{status}", f"HTTP {status} without a PayOS envelope", status)
            raise PaymentProtocolError(f"PayOS {method} {path} answered HTTP {status} that is not a JSON object")
        code = envelope.get("code")
        if status >= 400 or code != CODE_OK:
            shown = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else f"http_{status}"
            raise PaymentRejected(shown, self._scrub(envelope.get("desc", "")), status)
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise PaymentProtocolError(f"PayOS {method} {path} answered code 00 without a data object")
        if not verify_object(self._checksum_key, data, envelope.get("signature")):
            raise PaymentSignatureError(f"PayOS {method} {path}: the answer's signature is missing or does not verify")
        return data
