"""PayOS test fixtures: a sandbox on a free loopback port, a client for it, a webhook receiver.

Import the fixtures from a conftest (``from payos_fixtures import payos_sandbox, ...``)
or list the module in ``pytest_plugins``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dropsvc.payments import PayOSClient
from dropsvc.payments.sandbox import PayOSSandbox

TEST_CLIENT_ID = "test-client-id"
TEST_API_KEY = "test-api-key-7f3a"
TEST_CHECKSUM_KEY = "test_checksum_key"
RETURN_URL = "http://127.0.0.1:9/orders/abc?lang=vi"
CANCEL_URL = "http://127.0.0.1:9/orders/abc/cancelled"


def make_sandbox(**options: Any) -> PayOSSandbox:
    """A sandbox with the test credentials and fast webhook retries (not started)."""
    settings: dict[str, Any] = {"client_id": TEST_CLIENT_ID, "api_key": TEST_API_KEY,
                                "checksum_key": TEST_CHECKSUM_KEY, "webhook_backoff": 0.01,
                                "webhook_max_attempts": 8, "webhook_timeout": 2.0,
                                "poll_interval": 0.01}
    settings.update(options)
    return PayOSSandbox(**settings)


def make_client(base_url: str, **options: Any) -> PayOSClient:
    """A client with the test credentials, short timeouts and fast backoff."""
    settings: dict[str, Any] = {"client_id": TEST_CLIENT_ID, "api_key": TEST_API_KEY,
                                "checksum_key": TEST_CHECKSUM_KEY, "timeout": 2.0, "retries": 3, "backoff": 0.01}
    settings.update(options)
    return PayOSClient(base_url, **settings)


class WebhookReceiver:
    """A loopback HTTP server that records every POST; answers ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if 200 <= status < 300:
                        receiver.received.append(json.loads(raw))
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/payments/payos/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The accepted bodies once at least ``count`` arrived (fails the test on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} webhooks, got {len(self.received)}")
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def payos_sandbox() -> Iterator[PayOSSandbox]:
    """A running sandbox on a free loopback port with the test credentials."""
    with make_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def payos_client(payos_sandbox: PayOSSandbox) -> PayOSClient:
    """A client for ``payos_sandbox``."""
    return make_client(payos_sandbox.base_url)


@pytest.fixture
def webhook_receiver(payos_sandbox: PayOSSandbox) -> Iterator[WebhookReceiver]:
    """A webhook receiver, already set as ``payos_sandbox``'s webhook URL."""
    receiver = WebhookReceiver()
    payos_sandbox.webhook_url = receiver.url
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def payos_sandbox_factory() -> Iterator[Callable[..., PayOSSandbox]]:
    """Start extra sandboxes (test credentials unless overridden); all stopped at teardown."""
    started: list[PayOSSandbox] = []

    def start(**options: Any) -> PayOSSandbox:
        started.append(make_sandbox(**options).start())
        return started[-1]

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def payos_client_factory(payos_sandbox: PayOSSandbox) -> Callable[..., PayOSClient]:
    """Clients with the test credentials (overridable), for ``payos_sandbox`` unless given a base URL."""

    def make(base_url: str | None = None, **options: Any) -> PayOSClient:
        return make_client(base_url or payos_sandbox.base_url, **options)

    return make
