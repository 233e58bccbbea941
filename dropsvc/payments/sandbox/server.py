"""An offline PayOS on loopback (PAYOS.md section 5), for the demo, the tests and the benchmarks.

    with PayOSSandbox(webhook_url="http://127.0.0.1:8000/payments/payos/webhook") as payos:
        client = PayOSClient(payos.base_url, payos.client_id, payos.api_key, payos.checksum_key)
        link = client.create_link(...)
        payos.pay(link["orderCode"])          # or click "Pay" at link["checkoutUrl"]
        payos.wait_idle(5)                    # the signed webhook has been delivered

The same operations are available over HTTP under ``/sandbox/`` (see
``sandbox_http``) for tests that drive a sandbox in another process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from dropsvc.logs import get_logger
from dropsvc.payments.sandbox.delivery import WebhookDelivery
from dropsvc.payments.sandbox.http import SandboxHandler
from dropsvc.payments.sandbox.state import SandboxError, SandboxState

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_API_KEY = "sandbox-api-key"
SANDBOX_CHECKSUM_KEY = "sandbox-checksum-key"
WILDCARD_HOSTS = ("", "0.0.0.0")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: PayOSSandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, SandboxHandler)


class PayOSSandbox:
    """A PayOS look-alike: ``/v2`` API, checkout page, signed webhooks with retries, fault injection."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, client_id: str = SANDBOX_CLIENT_ID,
                 api_key: str = SANDBOX_API_KEY, checksum_key: str = SANDBOX_CHECKSUM_KEY,
                 webhook_url: str | None = None, *, webhook_max_attempts: int = 8, webhook_backoff: float = 0.1,
                 webhook_timeout: float = 3.0, queue_size: int = 1000,
                 poll_interval: float = 0.05) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.api_key = api_key
        self.checksum_key = checksum_key
        self.webhook_url = webhook_url
        self.state = SandboxState(checksum_key)
        self.delivery = WebhookDelivery(lambda: self.webhook_url, max_attempts=webhook_max_attempts,
                                        backoff=webhook_backoff, timeout=webhook_timeout, queue_size=queue_size)
        self.poll_interval = poll_interval  # how quickly stop() is noticed
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = self.base_url if self._server else "not started"
        return f"PayOSSandbox({where}, client_id={self.client_id!r})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> PayOSSandbox:
        """Bind and serve in a background thread (idempotent)."""
        with self._lock:
            if self._server is None:
                self._server = _Server((self.host, self.port), self)
                self.port = self._server.server_address[1]
                self.delivery.start()
                self._thread = threading.Thread(target=self._server.serve_forever,
                                                kwargs={"poll_interval": self.poll_interval},
                                                name="payos-sandbox-http", daemon=True)
                self._thread.start()
                get_logger().debug("payos_sandbox_started", url=self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and delivering (idempotent); undelivered webhooks are dropped."""
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                server.shutdown()
                server.server_close()
            if self._thread is not None:
                self._thread.join(5)
                self._thread = None
            self.delivery.stop()

    def __enter__(self) -> PayOSSandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running sandbox (the PayOS base URL to configure)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        return f"http://{host}:{self.port}"

    # -- test controls --------------------------------------------------------------------------

    def pay(self, order_code_or_id: int | str, amount: int | None = None, force: bool = False,
            from_checkout: bool = False) -> dict[str, Any]:
        """Pay a link (by orderCode or paymentLinkId) and queue its webhook: ``{"link", "webhook"}``.

        ``amount`` overrides the transferred sum; ``force`` pays a PAID or
        CANCELLED link again. Raises ``SandboxError`` (404, 409, 400).
        """
        link, body = self.state.pay(order_code_or_id, amount=amount, force=force, from_checkout=from_checkout)
        self._queue_webhook(body)
        return {"link": link, "webhook": body["data"]}

    def send_test_callback(self, order_code: int = 123) -> dict[str, Any]:
        """Queue PayOS's test callback (an orderCode the merchant never made); its ``data``."""
        body = self.state.test_callback(order_code)
        self._queue_webhook(body)
        return body["data"]

    def _queue_webhook(self, body: dict[str, Any]) -> None:
        faults = self.state.faults()
        self.delivery.submit(body, copies=1 + faults["duplicate"], reorder=faults["reorder"])

    def expire(self, order_code_or_id: int | str) -> dict[str, Any]:
        """Mark a PENDING link EXPIRED now; its state."""
        return self.state.expire(order_code_or_id)

    def link_state(self, order_code_or_id: int | str) -> dict[str, Any]:
        """The link's state, as ``GET /v2/payment-requests/{ref}`` answers it."""
        return self.state.state(order_code_or_id)

    def faults(self) -> dict[str, Any]:
        return self.state.faults()

    def set_faults(self, given: Mapping[str, Any] | None = None, /, **faults: Any) -> dict[str, Any]:
        """Change some faults: delay_ms, fail_next, duplicate, reorder (N, true or 0), wrong_amount, seed.

        Takes a mapping and/or keywords. Raises ``SandboxError`` (400) on an
        unknown name or a bad value. Turning ``reorder`` off releases the held webhooks.
        """
        if given is not None and not isinstance(given, Mapping):
            raise SandboxError(400, "20", "faults must be a JSON object")
        faults = {**(given or {}), **faults}
        current = self.state.set_faults(faults)
        if "seed" in faults:
            self.delivery.reseed(current["seed"])
        if current["reorder"] == 0:
            self.delivery.flush()
        return current

    def reset_faults(self) -> dict[str, Any]:
        """Every fault off; held webhooks are released."""
        current = self.state.reset_faults()
        self.delivery.reseed(current["seed"])
        self.delivery.flush()
        return current

    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt: orderCode, reference, paymentLinkId, amount, attempt, status, error, ok."""
        return self.delivery.deliveries()

    def flush(self) -> int:
        """Deliver the held (reordered) webhooks now, shuffled; how many."""
        return self.delivery.flush()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no webhook is queued, waiting for a retry or in flight; False on timeout."""
        return self.delivery.wait_idle(timeout)
