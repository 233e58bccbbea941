"""PayOS signatures (PAYOS.md sections 1 and 3): HMAC-SHA256, hex, lower case.

Two rules:

* a payment request signs exactly five fields in a fixed order,
  ``amount=..&cancelUrl=..&description=..&orderCode=..&returnUrl=..``;
* an answer's or webhook's ``data`` object is signed key by key, keys sorted
  by byte order, each value as text (see ``object_signature_text``).

Every string is signed as raw UTF-8 (no URL encoding, no ``\\u`` escapes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from typing import Any

Key = str | bytes


def _key_bytes(checksum_key: Key) -> bytes:
    if isinstance(checksum_key, bytes):
        return checksum_key
    if isinstance(checksum_key, str):
        return checksum_key.encode("utf-8")
    raise TypeError("the checksum key must be str or bytes")


def hmac_hex(checksum_key: Key, text: str) -> str:
    """HMAC-SHA256 of ``text`` (as UTF-8) with the checksum key, lower-case hex."""
    return hmac.new(_key_bytes(checksum_key), text.encode("utf-8"), hashlib.sha256).hexdigest()


def _integer_text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer")
    return str(value)


def payment_request_text(amount: int, cancel_url: str, description: str, order_code: int, return_url: str) -> str:
    """The exact text a payment request signs (five fields, alphabetical, values as they are)."""
    for name, value in (("cancel_url", cancel_url), ("description", description), ("return_url", return_url)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string")
    return (f"amount={_integer_text('amount', amount)}&cancelUrl={cancel_url}&description={description}"
            f"&orderCode={_integer_text('order_code', order_code)}&returnUrl={return_url}")


def sign_payment_request(checksum_key: Key, amount: int, cancel_url: str, description: str,
                         order_code: int, return_url: str) -> str:
    """The ``signature`` field of a ``POST /v2/payment-requests`` body."""
    return hmac_hex(checksum_key, payment_request_text(amount, cancel_url, description, order_code, return_url))


def _compact_json(value: Any) -> str:
    # sort_keys sorts by code point, which is the UTF-8 byte order; nulls stay null
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a signed number must be finite")
        return json.dumps(value)
    if isinstance(value, list | tuple | dict):
        return _compact_json(value)
    raise TypeError(f"cannot sign a value of type {type(value).__name__}")


def object_signature_text(data: Mapping[str, Any]) -> str:
    """The text the object rule signs: ``key=value`` pairs, keys in byte order, joined by ``&``."""
    if not isinstance(data, Mapping):
        raise TypeError("signed data must be an object")
    keys = list(data.keys())
    if not all(isinstance(key, str) for key in keys):
        raise TypeError("signed data must have string keys")
    keys.sort(key=lambda key: key.encode("utf-8", "surrogatepass"))
    return "&".join(f"{key}={_value_text(data[key])}" for key in keys)


def sign_object(checksum_key: Key, data: Mapping[str, Any]) -> str:
    """The signature of an answer's or a webhook's ``data`` object."""
    return hmac_hex(checksum_key, object_signature_text(data))


def verify_object(checksum_key: Key, data: Any, signature: Any) -> bool:
    """True when ``signature`` signs ``data``; compared in constant time. Never raises."""
    try:
        if not isinstance(signature, str) or not signature.isascii() or len(signature) != 64:
            return False
        expected = sign_object(checksum_key, data)
        return hmac.compare_digest(expected, signature.lower())
    except (TypeError, ValueError, UnicodeError, RecursionError):
        return False


def verify_payment_request(checksum_key: Key, body: Any) -> bool:
    """True when a payment-request body carries a valid five-field signature. Never raises."""
    try:
        signature = body.get("signature") if isinstance(body, Mapping) else None
        if not isinstance(signature, str) or not signature.isascii() or len(signature) != 64:
            return False
        expected = sign_payment_request(checksum_key, body.get("amount"), body.get("cancelUrl"),
                                        body.get("description"), body.get("orderCode"), body.get("returnUrl"))
        return hmac.compare_digest(expected, signature.lower())
    except (TypeError, ValueError, UnicodeError):
        return False
