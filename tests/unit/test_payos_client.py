"""PayOSClient against the sandbox: create/get/cancel, 231, retries, signatures, typed errors."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dropsvc.payments import (
    PaymentError,
    PaymentGatewayUnavailable,
    PaymentLinkConflict,
    PaymentProtocolError,
    PaymentRejected,
    PaymentSignatureError,
    PayOSClient,
    sign_object,
)
from dropsvc.payments.sandbox import PayOSSandbox

API_KEY = "test-api-key-7f3a"  # payos_fixtures' test credentials
CHECKSUM_KEY = "test_checksum_key"
RETURN_URL = "http://127.0.0.1:9/orders/abc?lang=vi"
CANCEL_URL = "http://127.0.0.1:9/orders/abc/cancelled"
MakeClient = Callable[..., PayOSClient]


def create(client: PayOSClient, order_code: int = 1001, amount: int = 2000, **extra: Any) -> dict[str, Any]:
    return client.create_link(order_code, amount, f"DROP {order_code}", RETURN_URL, CANCEL_URL, **extra)


def assert_no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error), repr(error.args)):
        assert API_KEY not in text and CHECKSUM_KEY not in text


class Sleeps(list):
    """A stand-in for time.sleep that records the delays."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# -- the happy paths -----------------------------------------------------------------------------


def test_create_answers_verified_link_data(payos_client: PayOSClient, payos_sandbox: PayOSSandbox) -> None:
    data = create(payos_client, items=[{"name": "Áo thun", "quantity": 1, "price": 2000}], expired_at=4_000_000_000)
    assert data["orderCode"] == 1001 and data["amount"] == 2000 and data["currency"] == "VND"
    assert data["status"] == "PENDING" and data["description"] == "DROP 1001"
    assert data["checkoutUrl"] == f"{payos_sandbox.base_url}/checkout/{data['paymentLinkId']}"
    assert {"bin", "accountNumber", "accountName", "qrCode"} <= set(data)
    assert payos_client.checkout_url(data["paymentLinkId"]) == data["checkoutUrl"]


def test_get_by_order_code_and_by_id(payos_client: PayOSClient) -> None:
    link_id = create(payos_client)["paymentLinkId"]
    by_code = payos_client.get_link(1001)
    assert by_code == payos_client.get_link(link_id)
    assert by_code["id"] == link_id and by_code["status"] == "PENDING"
    assert by_code["amountPaid"] == 0 and by_code["amountRemaining"] == 2000 and by_code["transactions"] == []
    assert by_code["canceledAt"] is None and by_code["cancellationReason"] is None


def test_get_after_payment(payos_client: PayOSClient, payos_sandbox: PayOSSandbox) -> None:
    create(payos_client)
    payos_sandbox.pay(1001)
    state = payos_client.get_link(1001)
    assert state["status"] == "PAID" and state["amountPaid"] == 2000 and state["amountRemaining"] == 0
    assert state["transactions"][0]["amount"] == 2000


def test_cancel(payos_client: PayOSClient) -> None:
    link_id = create(payos_client)["paymentLinkId"]
    state = payos_client.cancel_link(link_id, "sold out")
    assert state["status"] == "CANCELLED" and state["cancellationReason"] == "sold out" and state["canceledAt"]
    assert payos_client.get_link(1001)["status"] == "CANCELLED"
    with pytest.raises(PaymentRejected) as caught:
        payos_client.cancel_link(1001, "again")
    assert caught.value.code == "20"


def test_unknown_link_is_rejected_with_101(payos_client: PayOSClient) -> None:
    with pytest.raises(PaymentRejected) as caught:
        payos_client.get_link(424242)
    assert caught.value.code == "101"


# -- code 231 --------------------------------------------------------------------------------------


def test_231_reuses_a_pending_link_with_the_same_amount(payos_client: PayOSClient) -> None:
    first = create(payos_client)
    again = create(payos_client)
    assert again["reused"] is True
    assert again["paymentLinkId"] == first["paymentLinkId"] and again["checkoutUrl"] == first["checkoutUrl"]
    assert again["amount"] == 2000 and again["status"] == "PENDING" and again["orderCode"] == 1001


def test_231_with_another_amount_is_a_conflict(payos_client: PayOSClient) -> None:
    create(payos_client)
    with pytest.raises(PaymentLinkConflict) as caught:
        create(payos_client, amount=3000)
    assert caught.value.order_code == 1001 and caught.value.link["amount"] == 2000
    assert isinstance(caught.value, PaymentError)


@pytest.mark.parametrize("end", ["cancel", "pay", "expire"])
def test_231_with_a_link_no_longer_pending_is_a_conflict(payos_client: PayOSClient, payos_sandbox: PayOSSandbox,
                                                         end: str) -> None:
    create(payos_client)
    {"cancel": lambda: payos_client.cancel_link(1001, "x"), "pay": lambda: payos_sandbox.pay(1001),
     "expire": lambda: payos_sandbox.expire(1001)}[end]()
    with pytest.raises(PaymentLinkConflict, match="status"):
        create(payos_client)


# -- retries ---------------------------------------------------------------------------------------


def test_injected_5xx_are_retried_with_backoff(payos_sandbox: PayOSSandbox, payos_client_factory: MakeClient) -> None:
    sleeps = Sleeps()
    client = payos_client_factory(retries=3, backoff=0.2, sleep=sleeps)
    payos_sandbox.set_faults(fail_next=3)
    assert create(client)["status"] == "PENDING"
    assert sleeps == [0.2, 0.4, 0.8]
    assert payos_sandbox.faults()["fail_next"] == 0


def test_persistent_5xx_is_unavailable_after_the_retries(payos_sandbox: PayOSSandbox,
                                                         payos_client_factory: MakeClient) -> None:
    sleeps = Sleeps()
    client = payos_client_factory(retries=2, sleep=sleeps)
    payos_sandbox.set_faults(fail_next=100)
    with pytest.raises(PaymentGatewayUnavailable, match="3 attempt"):
        create(client)
    assert payos_sandbox.faults()["fail_next"] == 97  # exactly 1 + 2 retries reached it
    assert len(sleeps) == 2


def test_a_retried_create_that_had_succeeded_reuses_its_link(payos_sandbox: PayOSSandbox,
                                                             payos_client: PayOSClient) -> None:
    client = payos_client
    first = create(client)
    payos_sandbox.set_faults(fail_next=1)
    assert create(client)["paymentLinkId"] == first["paymentLinkId"]


def test_connection_refused_is_unavailable(payos_client_factory: MakeClient) -> None:
    with socket.socket() as sock:  # bound, never listening: connections are refused, and no one else gets the port
        sock.bind(("127.0.0.1", 0))
        sleeps = Sleeps()
        client = payos_client_factory(f"http://127.0.0.1:{sock.getsockname()[1]}", retries=2, sleep=sleeps)
        with pytest.raises(PaymentGatewayUnavailable) as caught:
            client.get_link(1)
    assert len(sleeps) == 2
    assert_no_secret(caught.value)


def test_timeouts_are_retried_then_unavailable(payos_sandbox: PayOSSandbox, payos_client_factory: MakeClient) -> None:
    payos_sandbox.set_faults(delay_ms=400)
    client = payos_client_factory(timeout=0.1, retries=1, backoff=0.0)
    with pytest.raises(PaymentGatewayUnavailable, match="2 attempt"):
        client.get_link(1)


def test_4xx_and_payos_codes_are_not_retried(payos_client_factory: MakeClient) -> None:
    sleeps = Sleeps()
    wrong_key = payos_client_factory(api_key="not-the-key", sleep=sleeps)
    with pytest.raises(PaymentRejected) as caught:
        create(wrong_key)
    assert caught.value.code == "401" and caught.value.http_status == 401
    assert_no_secret(caught.value)
    client = payos_client_factory(sleep=sleeps)
    with pytest.raises(PaymentRejected) as caught:
        client.create_link(5, 2000, "a description longer than 25 characters", RETURN_URL, CANCEL_URL)
    assert caught.value.code == "20" and caught.value.desc
    assert sleeps == []


def test_wrong_client_id_is_rejected(payos_client_factory: MakeClient) -> None:
    with pytest.raises(PaymentRejected) as caught:
        payos_client_factory(client_id="someone-else").get_link(1)
    assert caught.value.code == "401"


def test_a_request_signed_with_another_key_is_rejected(payos_client_factory: MakeClient) -> None:
    with pytest.raises(PaymentRejected) as caught:
        create(payos_client_factory(checksum_key="other_checksum_key"))
    assert caught.value.code == "20" and "signature" in caught.value.desc


# -- answer signatures -----------------------------------------------------------------------------


def test_answer_signed_with_another_key_is_a_signature_error(payos_sandbox_factory: Callable[..., PayOSSandbox],
                                                             payos_client_factory: MakeClient) -> None:
    other = payos_sandbox_factory(checksum_key="other_checksum_key")
    create(payos_client_factory(other.base_url, checksum_key="other_checksum_key"))
    client = payos_client_factory(other.base_url)  # expects CHECKSUM_KEY
    for call in (lambda: client.get_link(1001), lambda: client.cancel_link(1001, "x")):
        with pytest.raises(PaymentSignatureError) as caught:
            call()
        assert_no_secret(caught.value)


class FakePayOS:
    """A loopback server answering every request with a fixed status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()


@pytest.fixture
def fake_payos(payos_client_factory: MakeClient) -> Iterator[Any]:
    servers: list[FakePayOS] = []

    def start(status: int, body: Any) -> PayOSClient:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        servers.append(FakePayOS(status, raw))
        return payos_client_factory(servers[-1].url, retries=1, sleep=Sleeps())

    yield start
    for fake in servers:
        fake.server.shutdown()
        fake.server.server_close()


STATE = {"id": "x", "orderCode": 1, "amount": 2000, "status": "PENDING"}


def test_missing_answer_signature_is_a_signature_error(fake_payos: Any) -> None:
    with pytest.raises(PaymentSignatureError):
        fake_payos(200, {"code": "00", "desc": "success", "data": STATE}).get_link(1)
    with pytest.raises(PaymentSignatureError):
        fake_payos(200, {"code": "00", "desc": "success", "data": STATE, "signature": "00" * 32}).get_link(1)


def test_a_correctly_signed_answer_is_accepted(fake_payos: Any) -> None:
    answer = {"code": "00", "desc": "success", "data": STATE, "signature": sign_object(CHECKSUM_KEY, STATE)}
    assert fake_payos(200, answer).get_link(1) == STATE


@pytest.mark.parametrize("body", [b"<html>oops</html>", [1, 2], {"code": "00", "desc": "success", "data": None}])
def test_a_2xx_that_is_not_an_envelope_is_a_protocol_error(fake_payos: Any, body: Any) -> None:
    with pytest.raises(PaymentProtocolError):
        fake_payos(200, body).get_link(1)


def test_an_error_desc_never_echoes_a_secret(fake_payos: Any) -> None:
    client = fake_payos(403, {"code": "403", "desc": f"bad key {API_KEY} / {CHECKSUM_KEY}"})
    with pytest.raises(PaymentRejected) as caught:
        client.get_link(1)
    assert caught.value.code == "403" and "[redacted]" in caught.value.desc
    assert_no_secret(caught.value)


def test_a_created_link_for_another_order_is_refused(fake_payos: Any) -> None:
    data = {"orderCode": 999, "amount": 2000, "paymentLinkId": "x", "checkoutUrl": "http://x"}
    answer = {"code": "00", "desc": "success", "data": data, "signature": sign_object(CHECKSUM_KEY, data)}
    with pytest.raises(PaymentProtocolError):
        create(fake_payos(200, answer))


# -- arguments and hygiene -------------------------------------------------------------------------


def test_bad_arguments_fail_before_any_request(payos_client: PayOSClient) -> None:
    for call in (lambda: payos_client.create_link(0, 2000, "d", RETURN_URL, CANCEL_URL),
                 lambda: payos_client.create_link(1, True, "d", RETURN_URL, CANCEL_URL),
                 lambda: payos_client.create_link(1, 2000, "", RETURN_URL, CANCEL_URL),
                 lambda: payos_client.get_link(""), lambda: payos_client.get_link(-1)):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ValueError):
        PayOSClient("ftp://x", "id", "key", "sum")
    with pytest.raises(ValueError):
        PayOSClient("http://x", "id", "bad\nkey", "sum")


def test_repr_hides_the_keys(payos_client: PayOSClient) -> None:
    assert API_KEY not in repr(payos_client) and CHECKSUM_KEY not in repr(payos_client)


def test_production_checkout_urls() -> None:
    client = PayOSClient("https://api-merchant.payos.vn", "id", "key", "sum")
    assert client.checkout_url("abc") == "https://pay.payos.vn/web/abc"
