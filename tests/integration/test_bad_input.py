"""Every bad input gets its 4xx in the error envelope and changes nothing (SPEC 6)."""

from __future__ import annotations

import pytest
from live_server import Api

JSON = {"Content-Type": "application/json"}
GOOD = b'{"user_id": "mallory", "quantity": 1}'
PURCHASE = "/api/drops/{drop}/purchases"


def case(name, method, path, body=None, headers=JSON, status=422, code="invalid_field"):
    return pytest.param(method, path, body, headers, status, code, id=name)


def purchase(name, body, status=422, code="invalid_field", headers=JSON):
    return case(name, "POST", PURCHASE, body, headers, status, code)


CASES = [
    # the body: type, size, syntax
    purchase("malformed-json", b'{"user_id": "a",', 400, "malformed_json"),
    purchase("empty-body", b"", 400, "malformed_json"),
    purchase("not-utf8", b'{"user_id": "\xff\xfe"}', 400, "malformed_json"),
    purchase("lone-surrogate", b'{"user_id": "\\ud800"}', 400, "malformed_json"),
    purchase("nan", b'{"user_id": "a", "quantity": NaN}', 400, "malformed_json"),
    purchase("too-deep", b"[" * 2000, 400, "malformed_json"),
    purchase("trailing-garbage", GOOD + b"x", 400, "malformed_json"),
    purchase("over-4kib", b'{"user_id": "' + b"a" * 5000 + b'"}', 413, "payload_too_large"),
    purchase("text-plain", GOOD, 415, "unsupported_media_type", {"Content-Type": "text/plain"}),
    purchase("no-content-type", GOOD, 415, "unsupported_media_type", {}),
    purchase("form-encoded", b"user_id=a", 415, "unsupported_media_type",
             {"Content-Type": "application/x-www-form-urlencoded"}),
    purchase("json-array", b"[]"),
    purchase("json-string", b'"mallory"'),
    purchase("json-number", b"1"),
    purchase("json-null", b"null"),
    # fields
    purchase("empty-object", b"{}"),
    purchase("user-id-null", b'{"user_id": null}'),
    purchase("user-id-number", b'{"user_id": 7}'),
    purchase("user-id-bool", b'{"user_id": true}'),
    purchase("user-id-empty", b'{"user_id": ""}'),
    purchase("user-id-129-chars", b'{"user_id": "' + b"u" * 129 + b'"}'),
    purchase("user-id-array", b'{"user_id": ["a"]}'),
    purchase("user-id-object", b'{"user_id": {"id": "a"}}'),
    purchase("quantity-zero", b'{"user_id": "a", "quantity": 0}'),
    purchase("quantity-negative", b'{"user_id": "a", "quantity": -1}'),
    purchase("quantity-101", b'{"user_id": "a", "quantity": 101}'),
    purchase("quantity-float", b'{"user_id": "a", "quantity": 1.0}'),
    purchase("quantity-string", b'{"user_id": "a", "quantity": "1"}'),
    purchase("quantity-bool", b'{"user_id": "a", "quantity": true}'),
    purchase("quantity-null", b'{"user_id": "a", "quantity": null}'),
    purchase("quantity-huge", b'{"user_id": "a", "quantity": 100000000000000000000000000000}'),
    purchase("quantity-2-64", b'{"user_id": "a", "quantity": 18446744073709551615}'),
    purchase("quantity-object", b'{"user_id": "a", "quantity": {"n": 1}}'),
    purchase("unknown-field", b'{"user_id": "a", "quantity": 1, "price": 0}'),
    purchase("non-ascii-key", '{"user_id": "a", "số_lượng": 1}'.encode()),
    # the Idempotency-Key header
    purchase("key-too-long", GOOD, headers={**JSON, "Idempotency-Key": "k" * 129}),
    purchase("key-empty", GOOD, headers={**JSON, "Idempotency-Key": ""}),
    purchase("key-non-ascii", GOOD, headers={**JSON, "Idempotency-Key": "clé-1"}),
    purchase("key-control-char", GOOD, headers={**JSON, "Idempotency-Key": "a\tb"}),
    # the drop id in the path
    case("drop-id-word", "POST", "/api/drops/abc/purchases", GOOD, status=404, code="drop_not_found"),
    case("drop-id-zero", "POST", "/api/drops/0/purchases", GOOD, status=404, code="drop_not_found"),
    case("drop-id-negative", "POST", "/api/drops/-1/purchases", GOOD, status=404, code="drop_not_found"),
    case("drop-id-decimal", "POST", "/api/drops/1.0/purchases", GOOD, status=404, code="drop_not_found"),
    case("drop-id-underscore", "POST", "/api/drops/1_0/purchases", GOOD, status=404, code="drop_not_found"),
    case("drop-id-huge", "POST", "/api/drops/99999999999999999999999/purchases", GOOD, status=404,
         code="drop_not_found"),
    case("drop-id-2-63", "POST", "/api/drops/9223372036854775808/purchases", GOOD, status=404,
         code="drop_not_found"),
    case("drop-id-unknown", "POST", "/api/drops/987654321/purchases", GOOD, status=404,
         code="drop_not_found"),
    case("drop-id-non-ascii", "POST", "/api/drops/%D9%A3/purchases", GOOD, status=404,
         code="drop_not_found"),
    case("get-drop-word", "GET", "/api/drops/abc", status=404, code="drop_not_found"),
    case("get-drop-unknown", "GET", "/api/drops/987654321", status=404, code="drop_not_found"),
    # orders
    case("order-forged", "GET", "/api/orders/aaaaaaaaaaaaaaaaaaaaaaaaaa", status=404, code="order_not_found"),
    case("order-short", "GET", "/api/orders/abc", status=404, code="order_not_found"),
    case("order-non-ascii", "GET", "/api/orders/%C3%A9%C3%A9", status=404, code="order_not_found"),
    case("cancel-forged", "POST", "/api/orders/aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel", status=404,
         code="order_not_found"),
    # routes and methods
    case("unknown-route", "GET", "/api/nothing", status=404, code="not_found"),
    case("get-purchases", "GET", PURCHASE, status=405, code="method_not_allowed"),
    case("delete-drop", "DELETE", "/api/drops/{drop}", status=405, code="method_not_allowed"),
    case("put-drops", "PUT", "/api/drops", GOOD, status=405, code="method_not_allowed"),
    case("get-cancel", "GET", "/api/orders/aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel", status=405,
         code="method_not_allowed"),
    case("post-healthz", "POST", "/healthz", GOOD, status=405, code="method_not_allowed"),
    # admin without credentials never reaches the engine
    case("admin-no-token", "POST", "/api/admin/drops", b'{"slug": "x"}', status=401, code="unauthorized"),
    case("admin-patch-no-token", "PATCH", "/api/admin/drops/{drop}", b'{"total_stock": 0}', status=401,
         code="unauthorized"),
]


@pytest.fixture(scope="module")
def target(service):
    """A drop with one sale in it, so 'nothing changed' has something to compare."""
    client = Api(service)
    drop = client.create_drop(total_stock=5, per_user_limit=2)
    assert client.buy(drop["id"], "first-buyer").status == 201
    client.close()
    return drop


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code"), CASES)
def test_bad_input_is_refused_and_changes_nothing(api, snapshot, target, method, path, body, headers,
                                                  status, code):
    before = snapshot()
    reply = api.request(method, path.format(drop=target["id"]), body, headers)

    assert (reply.status, reply.headers.get("content-type")) == (status, "application/json"), reply.body
    payload = reply.json
    assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}
    assert payload["error"]["code"] == code
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    assert snapshot() == before
    # the server is still well and the drop untouched
    shown = api.get(f"/api/drops/{target['id']}").json
    assert (shown["sold"], shown["remaining"]) == (1, 4)


def test_field_errors_name_the_field(api, target):
    path = f"/api/drops/{target['id']}/purchases"
    assert "user_id" in api.post(path, {"quantity": 1}).json["error"]["message"]
    assert "quantity" in api.post(path, {"user_id": "a", "quantity": 0}).json["error"]["message"]
    assert "colour" in api.post(path, {"user_id": "a", "colour": "red"}).json["error"]["message"]
    key = {"Idempotency-Key": "x" * 200}
    assert "Idempotency-Key" in api.post(path, {"user_id": "a"}, key).json["error"]["message"]


def test_wrong_method_lists_the_allowed_ones(api, target):
    reply = api.request("GET", f"/api/drops/{target['id']}/purchases")
    assert reply.status == 405
    assert "POST" in reply.headers["allow"]


def test_content_type_with_charset_is_json(api, target):
    reply = api.request("POST", f"/api/drops/{target['id']}/purchases", b'{"user_id": "charset-buyer"}',
                        {"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 201
    assert api.request("POST", f"/api/orders/{reply.json['public_ref']}/cancel").status == 200
