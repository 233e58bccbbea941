"""The PayOS sandbox: API surface, checkout page, signed webhooks with retries, faults, robustness, CLI."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from dropsvc.payments import PayOSClient, sign_payment_request, verify_object
from dropsvc.payments.sandbox import PayOSSandbox, SandboxError
from dropsvc.payments.sandbox.cli import run_sandbox_cli

RETURN_URL = "http://127.0.0.1:9/orders/abc?lang=vi"
CANCEL_URL = "http://127.0.0.1:9/orders/abc/cancelled"
WEBHOOK_FIELDS = {"orderCode", "amount", "description", "accountNumber", "reference", "transactionDateTime",
                  "currency", "paymentLinkId", "code", "desc", "counterAccountBankId", "counterAccountBankName",
                  "counterAccountName", "counterAccountNumber", "virtualAccountName", "virtualAccountNumber"}


def call(sandbox: PayOSSandbox, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None, auth: bool = False) -> tuple[int, dict[str, str], Any]:
    """One request to the sandbox, without following redirects: (status, headers, JSON or text body)."""
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    sent = dict(headers or {})
    if auth:
        sent.update({"x-client-id": sandbox.client_id, "x-api-key": sandbox.api_key})
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if payload is not None:
        sent.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=payload, headers=sent)
        answer = conn.getresponse()
        text = answer.read().decode("utf-8")
        got = {name.lower(): value for name, value in answer.getheaders()}
    finally:
        conn.close()
    parsed = json.loads(text) if "json" in got.get("content-type", "") else text
    return answer.status, got, parsed


def create_body(sandbox: PayOSSandbox, order_code: int = 7, amount: int = 2000, **extra: Any) -> dict[str, Any]:
    body = {"orderCode": order_code, "amount": amount, "description": f"DROP {order_code}",
            "cancelUrl": CANCEL_URL, "returnUrl": RETURN_URL, **extra}
    body.setdefault("signature", sign_payment_request(sandbox.checksum_key, amount, CANCEL_URL, body["description"],
                                                      order_code, RETURN_URL))
    return body


def new_link(client: PayOSClient, order_code: int = 7, amount: int = 2000) -> dict[str, Any]:
    return client.create_link(order_code, amount, f"DROP {order_code}", RETURN_URL, CANCEL_URL)


# -- the PayOS API surface -------------------------------------------------------------------------


def test_create_answer_is_a_signed_envelope(payos_sandbox: PayOSSandbox) -> None:
    status, _, answer = call(payos_sandbox, "POST", "/v2/payment-requests", create_body(payos_sandbox), auth=True)
    assert status == 200 and answer["code"] == "00" and answer["desc"] == "success"
    data = answer["data"]
    assert verify_object(payos_sandbox.checksum_key, data, answer["signature"])
    assert set(data) == {"bin", "accountNumber", "accountName", "amount", "description", "orderCode", "currency",
                         "paymentLinkId", "status", "checkoutUrl", "qrCode"}
    assert re.fullmatch(r"[0-9a-f]{32}", data["paymentLinkId"]) and data["status"] == "PENDING"
    assert data["checkoutUrl"] == f"{payos_sandbox.base_url}/checkout/{data['paymentLinkId']}"


@pytest.mark.parametrize(("change", "code"), [
    ({"amount": 0}, "20"), ({"amount": "2000"}, "20"), ({"orderCode": -1}, "20"), ({"orderCode": True}, "20"),
    ({"description": "x" * 26}, "20"), ({"returnUrl": "javascript:alert(1)"}, "20"), ({"signature": None}, "20"),
    ({"signature": "0" * 64}, "20"), ({"items": [{"name": "x"}]}, "20"), ({"expiredAt": "soon"}, "20"),
])
def test_bad_create_bodies_get_code_20(payos_sandbox: PayOSSandbox, change: dict[str, Any], code: str) -> None:
    body = {**create_body(payos_sandbox), **change}
    status, _, answer = call(payos_sandbox, "POST", "/v2/payment-requests", body, auth=True)
    assert (status, answer["code"], answer["data"]) == (200, code, None) and answer["desc"]


def test_duplicate_order_code_is_231(payos_sandbox: PayOSSandbox) -> None:
    assert call(payos_sandbox, "POST", "/v2/payment-requests", create_body(payos_sandbox), auth=True)[0] == 200
    _, _, answer = call(payos_sandbox, "POST", "/v2/payment-requests", create_body(payos_sandbox), auth=True)
    assert answer["code"] == "231"


@pytest.mark.parametrize("headers", [{}, {"x-client-id": "test-client-id"}, {"x-api-key": "test-api-key-7f3a"},
                                     {"x-client-id": "test-client-id", "x-api-key": "wrong"}])
def test_missing_or_wrong_credentials_are_401(payos_sandbox: PayOSSandbox, headers: dict[str, str]) -> None:
    status, _, answer = call(payos_sandbox, "POST", "/v2/payment-requests", create_body(payos_sandbox), headers)
    assert status == 401 and answer["code"] == "401"
    assert call(payos_sandbox, "GET", "/v2/payment-requests/7", headers=headers)[0] == 401


def test_link_state_by_code_and_id_is_signed(payos_sandbox: PayOSSandbox, payos_client: PayOSClient) -> None:
    link_id = new_link(payos_client)["paymentLinkId"]
    for ref in ("7", link_id):
        _, _, answer = call(payos_sandbox, "GET", f"/v2/payment-requests/{ref}", auth=True)
        assert verify_object(payos_sandbox.checksum_key, answer["data"], answer["signature"])
        assert set(answer["data"]) == {"id", "orderCode", "amount", "amountPaid", "amountRemaining", "status",
                                       "createdAt", "transactions", "canceledAt", "cancellationReason"}


def test_cancel_endpoint(payos_sandbox: PayOSSandbox, payos_client: PayOSClient) -> None:
    link_id = new_link(payos_client)["paymentLinkId"]
    _, _, answer = call(payos_sandbox, "POST", f"/v2/payment-requests/{link_id}/cancel",
                        {"cancellationReason": "Hết hàng"}, auth=True)
    assert answer["data"]["status"] == "CANCELLED" and answer["data"]["cancellationReason"] == "Hết hàng"
    assert verify_object(payos_sandbox.checksum_key, answer["data"], answer["signature"])
    _, _, again = call(payos_sandbox, "POST", f"/v2/payment-requests/{link_id}/cancel", {}, auth=True)
    assert again["code"] == "20"
    with pytest.raises(SandboxError):
        payos_sandbox.pay(7)


def test_expired_link(payos_sandbox: PayOSSandbox) -> None:
    body = create_body(payos_sandbox, expiredAt=int(time.time()) - 1)
    link_id = call(payos_sandbox, "POST", "/v2/payment-requests", body, auth=True)[2]["data"]["paymentLinkId"]
    assert payos_sandbox.link_state(7)["status"] == "EXPIRED"
    assert call(payos_sandbox, "POST", f"/checkout/{link_id}/pay")[0] == 409
    assert payos_sandbox.pay(7)["link"]["status"] == "PAID"  # a late transfer still arrives


# -- checkout page ---------------------------------------------------------------------------------


def test_checkout_page_renders(payos_sandbox: PayOSSandbox, payos_client: PayOSClient) -> None:
    link = payos_client.create_link(8, 2_500_000, "Giày <b>&", RETURN_URL, CANCEL_URL)
    status, headers, page = call(payos_sandbox, "GET", urllib.parse.urlsplit(link["checkoutUrl"]).path)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "2.500.000 VND" in page and "Giày &lt;b&gt;&amp;" in page and "<b>" not in page
    assert ">Pay</button>" in page and ">Cancel</button>" in page
    assert not re.search(r"(src|href)=", page)  # no external resources


def test_pay_button_redirects_to_return_url_and_queues_the_webhook(
        payos_sandbox: PayOSSandbox, payos_client: PayOSClient, webhook_receiver: Any) -> None:
    link = new_link(payos_client)
    status, headers, _ = call(payos_sandbox, "POST", f"/checkout/{link['paymentLinkId']}/pay", raw=b"")
    assert status == 303
    target = urllib.parse.urlsplit(headers["location"])
    assert target.geturl().startswith("http://127.0.0.1:9/orders/abc?lang=vi&")
    assert dict(urllib.parse.parse_qsl(target.query)) == {
        "lang": "vi", "code": "00", "id": link["paymentLinkId"], "cancel": "false", "status": "PAID",
        "orderCode": "7"}
    assert webhook_receiver.wait_for(1)[0]["data"]["orderCode"] == 7
    assert payos_client.get_link(7)["status"] == "PAID"
    assert "no longer open" in call(payos_sandbox, "GET", f"/checkout/{link['paymentLinkId']}")[2]
    assert call(payos_sandbox, "POST", f"/checkout/{link['paymentLinkId']}/pay")[0] == 409


def test_cancel_button_redirects_to_cancel_url(payos_sandbox: PayOSSandbox, payos_client: PayOSClient) -> None:
    link = new_link(payos_client)
    status, headers, _ = call(payos_sandbox, "POST", f"/checkout/{link['paymentLinkId']}/cancel")
    target = urllib.parse.urlsplit(headers["location"])
    assert status == 303 and target.path == "/orders/abc/cancelled"
    query = dict(urllib.parse.parse_qsl(target.query))
    assert query["cancel"] == "true" and query["status"] == "CANCELLED" and query["id"] == link["paymentLinkId"]
    assert payos_client.get_link(7)["status"] == "CANCELLED"
    assert payos_sandbox.deliveries() == []


def test_unknown_checkout_page_is_404(payos_sandbox: PayOSSandbox) -> None:
    assert call(payos_sandbox, "GET", "/checkout/" + "ab" * 16)[0] == 404
    assert call(payos_sandbox, "GET", "/checkout/<script>")[0] == 404


# -- webhooks --------------------------------------------------------------------------------------


def test_pay_sends_a_signed_webhook(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                    webhook_receiver: Any) -> None:
    link = payos_client.create_link(9, 3000, "Thanh toán đơn 9", RETURN_URL, CANCEL_URL)
    payos_sandbox.pay(9)
    body = webhook_receiver.wait_for(1)[0]
    assert body["code"] == "00" and body["desc"] == "success" and body["success"] is True
    data = body["data"]
    assert verify_object(payos_sandbox.checksum_key, data, body["signature"])
    assert set(data) == WEBHOOK_FIELDS
    assert (data["orderCode"], data["amount"], data["paymentLinkId"]) == (9, 3000, link["paymentLinkId"])
    assert data["description"] == "Thanh toán đơn 9" and data["currency"] == "VND" and data["code"] == "00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", data["transactionDateTime"])
    assert data["reference"].startswith("FT")
    assert payos_sandbox.wait_idle(2)
    [attempt] = payos_sandbox.deliveries()
    assert (attempt["orderCode"], attempt["reference"], attempt["status"], attempt["ok"]) == (
        9, data["reference"], 200, True)


def test_each_payment_has_its_own_reference(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                             webhook_receiver: Any) -> None:
    new_link(payos_client)
    payos_sandbox.pay(7, amount=500)
    assert payos_client.get_link(7)["status"] == "PENDING"  # partly paid
    payos_sandbox.pay(7)
    bodies = webhook_receiver.wait_for(2)
    assert [b["data"]["amount"] for b in bodies] == [500, 1500]
    assert len({b["data"]["reference"] for b in bodies}) == 2
    assert payos_client.get_link(7)["status"] == "PAID"


def test_5xx_from_the_receiver_is_retried_until_2xx(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                                     webhook_receiver: Any) -> None:
    webhook_receiver.statuses = [500, 503, 404]
    new_link(payos_client)
    payos_sandbox.pay(7)
    assert len(webhook_receiver.wait_for(1)) == 1
    assert payos_sandbox.wait_idle(2)
    attempts = payos_sandbox.deliveries()
    assert [a["status"] for a in attempts] == [500, 503, 404, 200] and [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert len({a["reference"] for a in attempts}) == 1


def test_an_unreachable_receiver_is_retried_then_given_up(payos_sandbox_factory: Callable[..., PayOSSandbox]) -> None:
    with socket.socket() as sock:  # bound, never listening: connections are refused, and no one else gets the port
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        sandbox = payos_sandbox_factory(webhook_url=dead_url, webhook_max_attempts=3)
        sandbox.send_test_callback()
        assert sandbox.wait_idle(3)
        attempts = sandbox.deliveries()
    assert len(attempts) == 3 and all(a["status"] is None and a["error"] for a in attempts)


def test_duplicate_fault(payos_sandbox: PayOSSandbox, payos_client: PayOSClient, webhook_receiver: Any) -> None:
    payos_sandbox.set_faults(duplicate=2)
    new_link(payos_client)
    payos_sandbox.pay(7)
    bodies = webhook_receiver.wait_for(3)
    assert payos_sandbox.wait_idle(2)
    assert len(webhook_receiver.received) == 3 and all(b == bodies[0] for b in bodies)


def test_wrong_amount_fault_is_validly_signed(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                              webhook_receiver: Any) -> None:
    call(payos_sandbox, "POST", "/sandbox/faults", {"wrong_amount": True})
    new_link(payos_client)
    payos_sandbox.pay(7)
    body = webhook_receiver.wait_for(1)[0]
    assert body["data"]["amount"] == 2001
    assert verify_object(payos_sandbox.checksum_key, body["data"], body["signature"])


def test_reorder_holds_until_flushed(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                     webhook_receiver: Any) -> None:
    payos_sandbox.set_faults(reorder=True, seed=3)
    for code in (11, 12, 13, 14):
        new_link(payos_client, code)
        payos_sandbox.pay(code)
    assert payos_sandbox.wait_idle(1) and webhook_receiver.received == []
    assert call(payos_sandbox, "GET", "/sandbox/deliveries")[2]["held"] == 4
    assert call(payos_sandbox, "POST", "/sandbox/flush")[2] == {"released": 4}
    codes = [b["data"]["orderCode"] for b in webhook_receiver.wait_for(4)]
    assert sorted(codes) == [11, 12, 13, 14] and codes != [11, 12, 13, 14]


def test_reorder_batch_releases_when_full(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                          webhook_receiver: Any) -> None:
    payos_sandbox.set_faults(reorder=2)
    new_link(payos_client, 21)
    payos_sandbox.pay(21)
    assert payos_sandbox.delivery.held() == 1
    new_link(payos_client, 22)
    payos_sandbox.pay(22)
    assert sorted(b["data"]["orderCode"] for b in webhook_receiver.wait_for(2)) == [21, 22]


def test_test_callback_for_an_unknown_order(payos_sandbox: PayOSSandbox, webhook_receiver: Any) -> None:
    status, _, data = call(payos_sandbox, "POST", "/sandbox/test-callback", {"orderCode": 555})
    assert status == 200 and data["orderCode"] == 555
    body = webhook_receiver.wait_for(1)[0]
    assert verify_object(payos_sandbox.checksum_key, body["data"], body["signature"])


def test_control_api_pay_with_an_amount_override(payos_sandbox: PayOSSandbox, payos_client: PayOSClient,
                                                 webhook_receiver: Any) -> None:
    new_link(payos_client)
    status, _, answer = call(payos_sandbox, "POST", "/sandbox/pay/7", {"amount": 2500})
    assert status == 200 and answer["webhook"]["amount"] == 2500 and answer["link"]["status"] == "PAID"
    assert call(payos_sandbox, "POST", "/sandbox/pay/7")[0] == 409
    assert call(payos_sandbox, "POST", "/sandbox/pay/7", {"force": True})[0] == 200
    assert call(payos_sandbox, "POST", "/sandbox/wait-idle", {"timeout": 2})[2] == {"idle": True}
    assert [d["amount"] for d in call(payos_sandbox, "GET", "/sandbox/deliveries")[2]["deliveries"]] == [2500, 2000]


# -- faults and robustness -------------------------------------------------------------------------


def test_fault_settings_are_checked(payos_sandbox: PayOSSandbox) -> None:
    for bad in ({"nope": 1}, {"self": 1}, {"given": 1}, {"delay_ms": -1}, {"fail_next": "2"}, {"wrong_amount": 1},
                {"duplicate": 10**6}, {"reorder": -2}):
        status, _, answer = call(payos_sandbox, "POST", "/sandbox/faults", bad)
        assert status == 400 and answer["error"]
    assert call(payos_sandbox, "POST", "/sandbox/faults", [1, 2])[0] == 400
    assert call(payos_sandbox, "POST", "/sandbox/faults", {"fail_next": 2})[2]["fail_next"] == 2
    assert call(payos_sandbox, "GET", "/sandbox/faults")[2]["fail_next"] == 2
    assert call(payos_sandbox, "DELETE", "/sandbox/faults")[2]["fail_next"] == 0


def test_fail_next_answers_500_then_recovers(payos_sandbox: PayOSSandbox) -> None:
    payos_sandbox.set_faults(fail_next=1)
    assert call(payos_sandbox, "GET", "/v2/payment-requests/1", auth=True)[0] == 500
    assert call(payos_sandbox, "GET", "/v2/payment-requests/1", auth=True)[2]["code"] == "101"


def test_delay_fault(payos_sandbox: PayOSSandbox) -> None:
    payos_sandbox.set_faults(delay_ms=150)
    started = time.monotonic()
    call(payos_sandbox, "GET", "/v2/payment-requests/1", auth=True)
    assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize(("method", "path", "raw", "status"), [
    ("POST", "/v2/payment-requests", b"{not json", 200),
    ("POST", "/v2/payment-requests", b"\xff\xfe", 200),
    ("POST", "/sandbox/pay/7", b"[]", 400),
    ("POST", "/sandbox/pay/7", b'{"amount": -5}', 400),
    ("POST", "/sandbox/pay/99999", b"", 404),
    ("POST", "/sandbox/wait-idle", b'{"timeout": 1e9}', 400),
    ("POST", "/sandbox/webhook-url", b'{"url": "ftp://x"}', 400),
    ("GET", "/nowhere", None, 404),
    ("DELETE", "/v2/payment-requests/1", None, 404),
])
def test_garbage_is_refused_with_4xx(payos_sandbox: PayOSSandbox, method: str, path: str, raw: bytes | None,
                                     status: int) -> None:
    got, _, answer = call(payos_sandbox, method, path, raw=raw, auth=True)
    assert got == status
    if path.startswith("/v2/payment-requests") and method == "POST":
        assert answer["code"] == "20"


def test_oversized_and_bad_length_bodies(payos_sandbox: PayOSSandbox) -> None:
    assert call(payos_sandbox, "POST", "/sandbox/faults", headers={"Content-Length": "999999999"})[0] == 413
    assert call(payos_sandbox, "POST", "/sandbox/faults", headers={"Content-Length": "-3"})[0] == 400
    assert call(payos_sandbox, "POST", "/sandbox/faults", headers={"Content-Length": "9" * 5000})[0] == 413


def test_raw_garbage_does_not_kill_the_server(payos_sandbox: PayOSSandbox) -> None:
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"POST /sandbox/faults HTTP/1.1\r\n" + b"X" * 70000,
                 b"PUT / HTTP/1.0\r\n\r\n", b""):
        with socket.create_connection(("127.0.0.1", payos_sandbox.port), timeout=2) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(4096)
    assert call(payos_sandbox, "GET", "/sandbox/health")[2] == {"ok": True}


def test_concurrent_creates_are_safe(payos_sandbox: PayOSSandbox, payos_client: PayOSClient) -> None:
    codes: list[str] = []
    lock = threading.Lock()

    def create(order_code: int) -> None:
        _, _, answer = call(payos_sandbox, "POST", "/v2/payment-requests",
                            create_body(payos_sandbox, order_code), auth=True)
        with lock:
            codes.append(answer["code"])

    threads = [threading.Thread(target=create, args=(100 + i % 4,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == ["00"] * 4 + ["231"] * 12
    assert {payos_client.get_link(100 + i)["orderCode"] for i in range(4)} == {100, 101, 102, 103}


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Any:
    logger = logging.getLogger("dropsvc")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_cli_serves_until_stopped(restore_logging: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()  # start, log the URL, stop at once
    env = {"PAYOS_API_KEY": "env-api-key-123", "PAYOS_CHECKSUM_KEY": "env-checksum-456"}
    assert run_sandbox_cli(["--port", "0", "--webhook-url", "http://127.0.0.1:9/hook"], env=env, stop=stop) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    listening = next(line for line in lines if line["event"] == "payos_sandbox_listening")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", listening["fields"]["url"])
    assert listening["fields"]["client_id"] == "sandbox-client-id"
    text = json.dumps(lines)
    assert "env-api-key-123" not in text and "env-checksum-456" not in text


def test_cli_bad_usage_and_busy_port(restore_logging: Any) -> None:
    with pytest.raises(SystemExit) as caught:
        run_sandbox_cli(["--port", "70000"], env={})
    assert caught.value.code == 2
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert run_sandbox_cli(["--port", str(sock.getsockname()[1])], env={}, stop=threading.Event()) == 1
