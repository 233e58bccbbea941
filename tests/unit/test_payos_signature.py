"""PayOS signatures against every vector of PAYOS.md section 4, and the object rule's corners."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropsvc.payments.signature import (
    object_signature_text,
    payment_request_text,
    sign_object,
    sign_payment_request,
    verify_object,
    verify_payment_request,
)

KEY = "test_checksum_key"
WEBHOOK_DATA = {
    "accountNumber": "0123456789", "amount": 20000, "description": "thanh toan",
    "reference": "FT-REFERENCE", "transactionDateTime": "2025-12-12 09:00:00",
    "virtualAccountNumber": "", "counterAccountBankId": "01202001",
    "counterAccountBankName": "", "counterAccountName": "NGUYEN VAN A",
    "counterAccountNumber": "9876543210", "virtualAccountName": "",
    "currency": "VND", "orderCode": 0, "paymentLinkId": "payment-link-id",
    "code": "00", "desc": "success",
}
WEBHOOK_SIGNATURE = "302b3becca1672dff99daafae2965f40e48ea3ca39453e4bf37fbcc26807a0e8"
LINK_STATE = {
    "id": "payment-link-id", "orderCode": 0, "amount": 2000, "amountPaid": 0,
    "amountRemaining": 2000, "status": "PENDING",
    "createdAt": "2025-12-12T09:00:00+07:00", "transactions": [],
    "canceledAt": None, "cancellationReason": None,
}
LINK_STATE_SIGNATURE = "33093364158b143baa9ecd2e705d9a2a5a5d391a3cab7cb0a371588b3731368f"
REQUEST_SIGNATURE = "d8b7b0e5d19edfe7b1f53dedeb8d1c7c2b62fabd7eb320dbc514c58f13e9e2c5"


# -- the vectors ---------------------------------------------------------------------------------


def test_payment_request_vector_vietnamese_description() -> None:
    text = payment_request_text(2000, "http://localhost", "Thanh toán đơn hàng", 0, "http://localhost")
    assert text == ("amount=2000&cancelUrl=http://localhost&description=Thanh toán đơn hàng"
                    "&orderCode=0&returnUrl=http://localhost")
    assert sign_payment_request(KEY, 2000, "http://localhost", "Thanh toán đơn hàng", 0,
                                "http://localhost") == REQUEST_SIGNATURE


def test_payment_request_vector_verifies_as_a_body() -> None:
    body = {"orderCode": 0, "amount": 2000, "description": "Thanh toán đơn hàng", "cancelUrl": "http://localhost",
            "returnUrl": "http://localhost", "signature": REQUEST_SIGNATURE}
    assert verify_payment_request(KEY, body)
    assert not verify_payment_request(KEY, {**body, "amount": 2001})
    assert not verify_payment_request(KEY, {**body, "signature": None})
    assert not verify_payment_request(KEY, "not a body")


def test_webhook_data_vector() -> None:
    assert sign_object(KEY, WEBHOOK_DATA) == WEBHOOK_SIGNATURE
    assert verify_object(KEY, WEBHOOK_DATA, WEBHOOK_SIGNATURE)


def test_link_state_vector_with_nulls_and_an_empty_list() -> None:
    assert object_signature_text(LINK_STATE) == (
        "amount=2000&amountPaid=0&amountRemaining=2000&canceledAt=&cancellationReason="
        "&createdAt=2025-12-12T09:00:00+07:00&id=payment-link-id&orderCode=0&status=PENDING&transactions=[]")
    assert sign_object(KEY, LINK_STATE) == LINK_STATE_SIGNATURE
    assert verify_object(KEY, LINK_STATE, LINK_STATE_SIGNATURE)


def test_vectors_survive_a_json_round_trip() -> None:
    for data, signature in ((WEBHOOK_DATA, WEBHOOK_SIGNATURE), (LINK_STATE, LINK_STATE_SIGNATURE)):
        assert verify_object(KEY, json.loads(json.dumps(data)), signature)


# -- verification --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(WEBHOOK_DATA))
def test_any_tampered_webhook_field_fails(field: str) -> None:
    value = WEBHOOK_DATA[field]
    tampered = {**WEBHOOK_DATA, field: value + 1 if isinstance(value, int) else value + "x"}
    assert not verify_object(KEY, tampered, WEBHOOK_SIGNATURE)


def test_added_or_removed_field_fails() -> None:
    assert not verify_object(KEY, {**WEBHOOK_DATA, "extra": ""}, WEBHOOK_SIGNATURE)
    assert not verify_object(KEY, {k: v for k, v in WEBHOOK_DATA.items() if k != "desc"}, WEBHOOK_SIGNATURE)


def test_null_and_empty_string_sign_alike_but_not_missing() -> None:
    assert sign_object(KEY, {"a": None}) == sign_object(KEY, {"a": ""})
    assert sign_object(KEY, {"a": None, "b": 1}) != sign_object(KEY, {"b": 1})


def test_wrong_key_fails() -> None:
    assert not verify_object("another_key", WEBHOOK_DATA, WEBHOOK_SIGNATURE)
    assert verify_object(KEY.encode(), WEBHOOK_DATA, WEBHOOK_SIGNATURE)


def test_key_order_is_irrelevant() -> None:
    reversed_data = dict(reversed(list(WEBHOOK_DATA.items())))
    assert list(reversed_data) != list(WEBHOOK_DATA)
    assert verify_object(KEY, reversed_data, WEBHOOK_SIGNATURE)


def test_upper_case_signature_is_accepted() -> None:
    assert verify_object(KEY, WEBHOOK_DATA, WEBHOOK_SIGNATURE.upper())


@pytest.mark.parametrize("signature", [None, 123, "", "abc", WEBHOOK_SIGNATURE[:-1], WEBHOOK_SIGNATURE + "0",
                                       "é" * 64, ["x"], b"bytes" * 13])
def test_malformed_signature_is_false(signature: object) -> None:
    assert verify_object(KEY, WEBHOOK_DATA, signature) is False


@pytest.mark.parametrize("data", [None, [], "text", 42, {1: "int key"}, {"a": {1, 2}}, {"a": float("nan")},
                                  {"a": [float("inf")]}, {"a": object()}, {"a": b"bytes"}])
def test_malformed_data_is_false_and_never_raises(data: object) -> None:
    assert verify_object(KEY, data, WEBHOOK_SIGNATURE) is False


def test_malformed_key_is_false() -> None:
    assert verify_object(None, WEBHOOK_DATA, WEBHOOK_SIGNATURE) is False  # type: ignore[arg-type]


def test_deeply_nested_data_is_false_not_a_crash() -> None:
    deep: object = []
    for _ in range(5000):
        deep = [deep]
    assert verify_object(KEY, {"a": deep}, WEBHOOK_SIGNATURE) is False


# -- the text of the object rule -----------------------------------------------------------------


def test_keys_are_sorted_by_byte_order() -> None:
    text = object_signature_text({"a": 1, "B": 2, "_": 3, "é": 4, "z": 5, "Z": 6})
    assert text == "B=2&Z=6&_=3&a=1&z=5&é=4"


def test_value_kinds() -> None:
    data = {"n": None, "t": True, "f": False, "i": -7, "x": 1.5, "s": "a&b=c d/é", "e": ""}
    assert object_signature_text(data) == "e=&f=false&i=-7&n=&s=a&b=c d/é&t=true&x=1.5"


def test_lists_are_compact_json_with_sorted_keys_and_nulls_kept() -> None:
    data = {"items": [{"price": 1000, "name": "Áo thun", "note": None}, None, [True, 1.0], "x"]}
    assert object_signature_text(data) == 'items=[{"name":"Áo thun","note":null,"price":1000},null,[true,1.0],"x"]'


def test_objects_are_compact_sorted_json() -> None:
    data = {"meta": {"z": 1, "a": {"y": None, "b": "Đà Nẵng"}}}
    assert object_signature_text(data) == 'meta={"a":{"b":"Đà Nẵng","y":null},"z":1}'


def test_non_ascii_is_signed_raw_utf8() -> None:
    text = object_signature_text({"description": "Thanh toán đơn hàng", "list": ["ữ"]})
    assert "\\u" not in text
    assert text == 'description=Thanh toán đơn hàng&list=["ữ"]'
    assert sign_object(KEY, {"description": "Thanh toán"}) != sign_object(KEY, {"description": "Thanh toan"})


def test_sign_object_rejects_what_it_cannot_sign() -> None:
    with pytest.raises(TypeError):
        sign_object(KEY, {"a": object()})
    with pytest.raises(ValueError):
        sign_object(KEY, {"a": float("nan")})
    with pytest.raises(TypeError):
        sign_payment_request(KEY, True, "u", "d", 1, "u")  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=6))
def test_sign_then_verify_round_trips_through_json(data: dict) -> None:
    signature = sign_object(KEY, data)
    assert verify_object(KEY, json.loads(json.dumps(data, ensure_ascii=True)), signature)
    assert verify_object(KEY, dict(reversed(list(data.items()))), signature)
