"""The sandbox's memory: payment links, faults, and the webhooks a payment produces.

Everything here is guarded by one lock and knows nothing about HTTP;
failures are ``SandboxError`` (an HTTP status for the control API, a PayOS
code and text for the ``/v2`` API).
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dropsvc.payments.signature import sign_object, verify_payment_request

VN_TIME = timezone(timedelta(hours=7), "ICT")
MAX_ORDER_CODE = 9_007_199_254_740_991  # JavaScript's largest safe integer, as PayOS
MAX_AMOUNT = 10_000_000_000
MAX_DESCRIPTION = 25
MAX_URL = 2048
BANK_BIN = "970422"
ACCOUNT_NUMBER = "0123456789"
ACCOUNT_NAME = "LIMITED DROP SANDBOX"
PAYER = {"counterAccountBankId": "970436", "counterAccountBankName": "Vietcombank",
         "counterAccountName": "NGUYEN VAN A", "counterAccountNumber": "9876543210",
         "virtualAccountName": "", "virtualAccountNumber": ""}
FAULT_LIMITS = {"delay_ms": 60_000, "fail_next": 1_000, "duplicate": 100, "reorder": 1_000, "seed": 2**32}
DEFAULT_FAULTS: dict[str, Any] = {"delay_ms": 0, "fail_next": 0, "duplicate": 0, "reorder": 0,
                                  "wrong_amount": False, "seed": 0}


class SandboxError(Exception):
    """A refused request: ``http_status`` for HTTP, ``code``/``desc`` for the PayOS envelope."""

    def __init__(self, http_status: int, code: str, desc: str) -> None:
        super().__init__(desc)
        self.http_status = http_status
        self.code = code
        self.desc = desc


def _bad(desc: str) -> SandboxError:
    return SandboxError(400, "20", desc)


def is_int(value: Any) -> bool:
    """A JSON integer (``bool`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def vn_now() -> datetime:
    return datetime.now(VN_TIME).replace(microsecond=0)


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _crc16(text: str) -> str:
    crc = 0xFFFF
    for byte in text.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def _ascii(text: str) -> str:
    """Vietnamese text without its marks, as bank transfer descriptions carry it."""
    bare = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in bare if c.isascii() and c.isprintable())


def vietqr_text(amount: int, description: str) -> str:
    """An EMVCo/VietQR-shaped payload for the sandbox account (not payable anywhere)."""
    description = _ascii(description)
    account = _tlv("00", "A000000727") + _tlv("01", _tlv("00", BANK_BIN) + _tlv("01", ACCOUNT_NUMBER)) \
        + _tlv("02", "QRIBFTTA")
    body = (_tlv("00", "01") + _tlv("01", "12") + _tlv("38", account) + _tlv("53", "704")
            + _tlv("54", str(amount)) + _tlv("58", "VN") + _tlv("62", _tlv("08", description[:25])) + "6304")
    return body + _crc16(body)


@dataclass
class Link:
    """One payment link and what happened to it."""

    id: str
    order_code: int
    amount: int
    description: str
    return_url: str
    cancel_url: str
    expired_at: int | None
    created_at: datetime = field(default_factory=vn_now)
    status: str = "PENDING"
    amount_paid: int = 0
    transactions: list[dict[str, Any]] = field(default_factory=list)
    canceled_at: str | None = None
    cancellation_reason: str | None = None

    def refresh(self) -> None:
        """A PENDING link past its ``expiredAt`` becomes EXPIRED."""
        if self.status == "PENDING" and self.expired_at is not None and time.time() >= self.expired_at:
            self.status = "EXPIRED"

    def state(self) -> dict[str, Any]:
        """The ``data`` of ``GET /v2/payment-requests/{id}``."""
        return {"id": self.id, "orderCode": self.order_code, "amount": self.amount,
                "amountPaid": self.amount_paid, "amountRemaining": max(self.amount - self.amount_paid, 0),
                "status": self.status, "createdAt": self.created_at.isoformat(),
                "transactions": [dict(t) for t in self.transactions],
                "canceledAt": self.canceled_at, "cancellationReason": self.cancellation_reason}

    def created(self, base_url: str) -> dict[str, Any]:
        """The ``data`` of ``POST /v2/payment-requests``."""
        return {"bin": BANK_BIN, "accountNumber": ACCOUNT_NUMBER, "accountName": ACCOUNT_NAME,
                "amount": self.amount, "description": self.description, "orderCode": self.order_code,
                "currency": "VND", "paymentLinkId": self.id, "status": self.status,
                "checkoutUrl": f"{base_url}/checkout/{self.id}",
                "qrCode": vietqr_text(self.amount, self.description)}


def _text_field(body: dict[str, Any], name: str, limit: int, url: bool = False) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"{name} must be a non-empty string of at most {limit} characters")
    if url and not value.startswith(("http://", "https://")):
        raise _bad(f"{name} must be an http:// or https:// URL")
    return value


def validate_create(body: Any) -> dict[str, Any]:
    """The checked fields of a create body, or ``SandboxError`` code 20."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    order_code, amount = body.get("orderCode"), body.get("amount")
    if not is_int(order_code) or not 0 < order_code <= MAX_ORDER_CODE:
        raise _bad(f"orderCode must be an integer from 1 to {MAX_ORDER_CODE}")
    if not is_int(amount) or not 0 < amount <= MAX_AMOUNT:
        raise _bad(f"amount must be an integer from 1 to {MAX_AMOUNT}")
    expired_at = body.get("expiredAt")
    if expired_at is not None and (not is_int(expired_at) or not 0 < expired_at < 2**32):
        raise _bad("expiredAt must be Unix seconds")
    items = body.get("items")
    if items is not None and (not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) and is_int(i.get("quantity"))
            and i["quantity"] > 0 and is_int(i.get("price")) and i["price"] >= 0 for i in items)):
        raise _bad("items must be a list of {name, quantity, price}")
    if not isinstance(body.get("signature"), str):
        raise _bad("signature is required")
    return {"order_code": order_code, "amount": amount, "expired_at": expired_at,
            "description": _text_field(body, "description", MAX_DESCRIPTION),
            "return_url": _text_field(body, "returnUrl", MAX_URL, url=True),
            "cancel_url": _text_field(body, "cancelUrl", MAX_URL, url=True)}


def parse_faults(given: Any) -> dict[str, Any]:
    """Checked fault settings (a subset of ``DEFAULT_FAULTS``), or ``SandboxError`` 400."""
    if not isinstance(given, dict):
        raise SandboxError(400, "20", "faults must be a JSON object")
    clean: dict[str, Any] = {}
    for name, value in given.items():
        if name not in DEFAULT_FAULTS:
            raise SandboxError(400, "20", f"unknown fault {name!r}; known: {', '.join(DEFAULT_FAULTS)}")
        if name == "wrong_amount":
            if not isinstance(value, bool):
                raise SandboxError(400, "20", "wrong_amount must be true or false")
        elif name == "reorder" and isinstance(value, bool):
            value = -1 if value else 0  # true: hold until flushed
        elif not is_int(value) or not 0 <= value <= FAULT_LIMITS[name]:
            raise SandboxError(400, "20", f"{name} must be an integer from 0 to {FAULT_LIMITS[name]}")
        clean[name] = value
    return clean


class SandboxState:
    """Links by orderCode and by id, plus the fault switches; thread-safe."""

    def __init__(self, checksum_key: str) -> None:
        self._checksum_key = checksum_key
        self._lock = threading.RLock()
        self._by_code: dict[int, Link] = {}
        self._by_id: dict[str, Link] = {}
        self._faults = dict(DEFAULT_FAULTS)

    # -- faults ---------------------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._faults)

    def set_faults(self, given: Any) -> dict[str, Any]:
        clean = parse_faults(given)
        with self._lock:
            self._faults.update(clean)
            return dict(self._faults)

    def reset_faults(self) -> dict[str, Any]:
        with self._lock:
            self._faults = dict(DEFAULT_FAULTS)
            return dict(self._faults)

    def take_api_fault(self) -> tuple[float, bool]:
        """(delay in seconds, whether this answer must be a 500) for one ``/v2`` request."""
        with self._lock:
            fail = self._faults["fail_next"] > 0
            if fail:
                self._faults["fail_next"] -= 1
            return self._faults["delay_ms"] / 1000.0, fail

    # -- links ----------------------------------------------------------------------------------

    def create(self, body: Any, base_url: str) -> dict[str, Any]:
        """Create a link from a verified-shape body; code 20 (bad), 231 (orderCode taken)."""
        fields = validate_create(body)
        if not verify_payment_request(self._checksum_key, body):
            raise _bad("signature does not match the data")
        with self._lock:
            if fields["order_code"] in self._by_code:
                raise SandboxError(400, "231", "this orderCode already has a payment link")
            link = Link(id=secrets.token_hex(16), **fields)
            self._by_code[link.order_code] = link
            self._by_id[link.id] = link
            return link.created(base_url)

    def _find(self, ref: Any) -> Link:
        link = None
        if is_int(ref):
            link = self._by_code.get(ref)
        elif isinstance(ref, str):
            link = self._by_id.get(ref)
            if link is None and ref.isascii() and ref.isdigit() and len(ref) <= 16:
                link = self._by_code.get(int(ref))
        if link is None:
            raise SandboxError(404, "101", "payment link not found")
        link.refresh()
        return link

    def state(self, ref: Any) -> dict[str, Any]:
        with self._lock:
            return self._find(ref).state()

    def link(self, ref: Any) -> Link:
        """A snapshot of one link (for the checkout page)."""
        with self._lock:
            return copy.copy(self._find(ref))

    def expire(self, ref: Any) -> dict[str, Any]:
        with self._lock:
            link = self._find(ref)
            if link.status != "PENDING":
                raise SandboxError(409, "20", f"the link is {link.status}, not PENDING")
            link.status = "EXPIRED"
            return link.state()

    def cancel(self, ref: Any, reason: Any) -> dict[str, Any]:
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise _bad("cancellationReason must be a string of at most 500 characters")
        with self._lock:
            link = self._find(ref)
            if link.status != "PENDING":
                raise SandboxError(409, "20", f"the link is {link.status} and cannot be cancelled")
            link.status = "CANCELLED"
            link.canceled_at = vn_now().isoformat()
            link.cancellation_reason = reason
            return link.state()

    def pay(self, ref: Any, amount: Any = None, force: bool = False,
            from_checkout: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record a transfer: (link state, signed webhook body).

        A PENDING link can always be paid; an EXPIRED one only through the
        control API (a late bank transfer), a PAID or CANCELLED one only with
        ``force``. ``amount`` defaults to what is left to pay.
        """
        if amount is not None and (not is_int(amount) or not 0 < amount <= MAX_AMOUNT):
            raise SandboxError(400, "20", f"amount must be an integer from 1 to {MAX_AMOUNT}")
        with self._lock:
            link = self._find(ref)
            allowed = link.status == "PENDING" or force or (link.status == "EXPIRED" and not from_checkout)
            if not allowed:
                raise SandboxError(409, "20", f"the link is {link.status}, not PENDING")
            remaining = link.amount - link.amount_paid
            paid = amount if amount is not None else (remaining if remaining > 0 else link.amount)
            when = vn_now().strftime("%Y-%m-%d %H:%M:%S")
            reference = "FT" + secrets.token_hex(6).upper()
            link.amount_paid += paid
            if link.amount_paid >= link.amount:
                link.status = "PAID"
            link.transactions.append({"reference": reference, "amount": paid, "accountNumber": ACCOUNT_NUMBER,
                                      "description": link.description, "transactionDateTime": when, **PAYER})
            data = {"orderCode": link.order_code, "amount": paid + (1 if self._faults["wrong_amount"] else 0),
                    "description": link.description, "accountNumber": ACCOUNT_NUMBER, "reference": reference,
                    "transactionDateTime": when, "currency": "VND", "paymentLinkId": link.id,
                    "code": "00", "desc": "success", **PAYER}
            return link.state(), self.webhook_body(data)

    def test_callback(self, order_code: Any = 123) -> dict[str, Any]:
        """PayOS's test callback (sent when a webhook URL is registered): an orderCode nobody made."""
        if not is_int(order_code) or not 0 < order_code <= MAX_ORDER_CODE:
            raise SandboxError(400, "20", "orderCode must be a positive integer")
        data = {"orderCode": order_code, "amount": 3000, "description": "VQRIO123",
                "accountNumber": "12345678", "reference": "TF230204212323",
                "transactionDateTime": "2023-02-04 18:25:00", "currency": "VND",
                "paymentLinkId": "124c33293c43417ab7879e14c8d9eb18", "code": "00", "desc": "success",
                "counterAccountBankId": "", "counterAccountBankName": "", "counterAccountName": "",
                "counterAccountNumber": "", "virtualAccountName": "", "virtualAccountNumber": ""}
        return self.webhook_body(data)

    def webhook_body(self, data: dict[str, Any]) -> dict[str, Any]:
        """A webhook envelope with ``data`` signed by the object rule."""
        return {"code": "00", "desc": "success", "success": True, "data": data,
                "signature": sign_object(self._checksum_key, data)}

    def sign(self, data: dict[str, Any]) -> str:
        return sign_object(self._checksum_key, data)
