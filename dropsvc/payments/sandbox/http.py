"""The sandbox's HTTP face: the PayOS ``/v2`` API, the checkout page, the ``/sandbox`` control API.

``/v2`` answers use PayOS's envelope (``code``, ``desc``, ``data``,
``signature``); PayOS errors are HTTP 200 with a code (``20`` bad input or
signature, ``101`` not found, ``231`` orderCode taken); bad credentials are
HTTP 401 (code ``401``), an injected failure HTTP 500. The control API answers plain JSON,
``{"error": ...}`` with a 4xx on bad input. Nothing a client sends can stop
the server: unexpected failures answer 500 and are logged.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from dropsvc.logs import get_logger
from dropsvc.payments.sandbox.state import SandboxError

if TYPE_CHECKING:
    from dropsvc.payments.sandbox.server import PayOSSandbox

MAX_BODY = 64 * 1024
PAYOS_CODES = ("20", "101", "231")  # answered as HTTP 200 with the code, like PayOS
LINK_PATH = re.compile(r"^/v2/payment-requests/([^/]{1,200})$")
CANCEL_PATH = re.compile(r"^/v2/payment-requests/([^/]{1,200})/cancel$")
CHECKOUT_PATH = re.compile(r"^/checkout/([0-9a-f]{1,64})(?:/(pay|cancel))?$")
CONTROL_REF_PATH = re.compile(r"^/sandbox/(pay|expire)/(\d{1,16})$")
PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>PayOS sandbox checkout</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}
.amount{{font-size:2rem;font-weight:bold}}form{{display:inline-block;margin-right:1rem}}
button{{font-size:1.1rem;padding:.5rem 1.5rem}}</style></head>
<body><h1>PayOS sandbox</h1>
<p class="amount">{amount} VND</p><p class="description">{description}</p>
<p>Order <code>{order_code}</code>, status <strong class="status">{status}</strong></p>
{actions}
</body></html>
"""
ACTIONS = """<form method="post" action="/checkout/{id}/pay"><button type="submit">Pay</button></form>
<form method="post" action="/checkout/{id}/cancel"><button type="submit">Cancel</button></form>"""


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = "&".join(filter(None, [parts.query, urllib.parse.urlencode(params)]))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class SandboxHandler(BaseHTTPRequestHandler):
    """One request to the sandbox; ``self.server.sandbox`` is the ``PayOSSandbox``."""

    server_version = "PayOSSandbox/1.0"
    timeout = 30  # seconds a client may take to send its request
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    @property
    def sandbox(self) -> PayOSSandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        get_logger().debug("payos_sandbox_request", line=format % args)

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _envelope(self, data: dict[str, Any]) -> None:
        self._json(200, {"code": "00", "desc": "success", "data": data, "signature": self.sandbox.state.sign(data)})

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise SandboxError(411, "411", "send a Content-Length, not a chunked body")
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not raw.isascii() or not raw.isdigit():
            raise SandboxError(400, "400", "bad Content-Length")
        if len(raw) > 12 or int(raw) > MAX_BODY:
            raise SandboxError(413, "413", f"the body is larger than {MAX_BODY} bytes")
        length = int(raw)
        return self.rfile.read(length) if length else b""

    def _read_json(self, optional: bool = False) -> Any:
        raw = self._read_body()
        if not raw.strip() and optional:
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SandboxError(400, "20", "the body must be JSON (UTF-8)") from exc

    def _dispatch(self, routes: Any) -> None:
        path = urllib.parse.urlsplit(self.path).path
        try:
            try:
                if not routes(path):
                    raise SandboxError(404, "404", f"no route for {self.command} {path}")
            except SandboxError as exc:
                self._refuse(path, exc)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away
        except Exception:  # noqa: BLE001 - a sandbox must survive anything
            get_logger().exception("payos_sandbox_error", method=self.command, path=path)
            self.close_connection = True
            try:
                self._json(500, {"error": "internal sandbox error"})
            except OSError:
                pass

    def _refuse(self, path: str, exc: SandboxError) -> None:
        if path.startswith("/v2/"):
            status = 200 if exc.code in PAYOS_CODES else exc.http_status
            self._json(status, {"code": exc.code, "desc": exc.desc, "data": None})
        elif path.startswith("/checkout/"):
            self._page(exc.http_status, f"<h1>{exc.http_status}</h1><p>{html.escape(exc.desc)}</p>")
        else:
            self._json(exc.http_status, {"error": exc.desc})

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch(self._route_get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(self._route_get)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(self._route_post)

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch(self._route_delete)

    # -- routes ---------------------------------------------------------------------------------

    def _route_get(self, path: str) -> bool:
        if match := LINK_PATH.match(path):
            self._api_guard()
            self._envelope(self.sandbox.state.state(urllib.parse.unquote(match.group(1))))
        elif (match := CHECKOUT_PATH.match(path)) and not match.group(2):
            self._checkout_page(match.group(1))
        elif path == "/sandbox/faults":
            self._json(200, self.sandbox.faults())
        elif path == "/sandbox/deliveries":
            self._json(200, {"deliveries": self.sandbox.deliveries(), "held": self.sandbox.delivery.held()})
        elif path == "/sandbox/health":
            self._json(200, {"ok": True})
        else:
            return False
        return True

    def _route_post(self, path: str) -> bool:
        sandbox = self.sandbox
        if path == "/v2/payment-requests":
            body = self._read_json()
            self._api_guard()
            self._envelope(sandbox.state.create(body, sandbox.base_url))
        elif match := CANCEL_PATH.match(path):
            body = self._read_json(optional=True)
            self._api_guard()
            if not isinstance(body, dict):
                raise SandboxError(400, "20", "the body must be a JSON object")
            ref = urllib.parse.unquote(match.group(1))
            self._envelope(sandbox.state.cancel(ref, body.get("cancellationReason")))
        elif match := CHECKOUT_PATH.match(path):
            self._read_body()
            if match.group(2) == "pay":
                self._checkout_pay(match.group(1))
            elif match.group(2) == "cancel":
                self._checkout_cancel(match.group(1))
            else:
                return False
        elif path.startswith("/sandbox/"):
            return self._route_control(path)
        else:
            return False
        return True

    def _route_delete(self, path: str) -> bool:
        if path != "/sandbox/faults":
            return False
        self._json(200, self.sandbox.reset_faults())
        return True

    def _route_control(self, path: str) -> bool:
        sandbox = self.sandbox
        body = self._read_json(optional=True)
        if not isinstance(body, dict):
            raise SandboxError(400, "20", "the body must be a JSON object")
        if match := CONTROL_REF_PATH.match(path):
            order_code = int(match.group(2))
            if match.group(1) == "pay":
                force = body.get("force", False)
                if not isinstance(force, bool):
                    raise SandboxError(400, "20", "force must be true or false")
                self._json(200, sandbox.pay(order_code, amount=body.get("amount"), force=force))
            else:
                self._json(200, sandbox.expire(order_code))
        elif path == "/sandbox/test-callback":
            self._json(200, sandbox.send_test_callback(body.get("orderCode", 123)))
        elif path == "/sandbox/faults":
            self._json(200, sandbox.set_faults(body))
        elif path == "/sandbox/flush":
            self._json(200, {"released": sandbox.flush()})
        elif path == "/sandbox/wait-idle":
            timeout = body.get("timeout", 5)
            if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 <= timeout <= 30:
                raise SandboxError(400, "20", "timeout must be a number of seconds from 0 to 30")
            self._json(200, {"idle": sandbox.wait_idle(timeout)})
        elif path == "/sandbox/webhook-url":
            url = body.get("url")
            if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
                raise SandboxError(400, "20", "url must be an http:// or https:// URL, or null")
            sandbox.webhook_url = url
            self._json(200, {"webhook_url": url})
        else:
            return False
        return True

    # -- PayOS API ------------------------------------------------------------------------------

    def _api_guard(self) -> None:
        """Credentials first, then the injected faults (delay, 500)."""
        sandbox = self.sandbox
        client_id = self.headers.get("x-client-id", "")
        api_key = self.headers.get("x-api-key", "")
        valid = hmac.compare_digest(client_id.encode("utf-8", "replace"), sandbox.client_id.encode("utf-8")) \
            & hmac.compare_digest(api_key.encode("utf-8", "replace"), sandbox.api_key.encode("utf-8"))
        delay, fail = sandbox.state.take_api_fault()
        if delay:
            time.sleep(delay)
        if fail:
            raise _InjectedFailure()
        if not valid:
            raise SandboxError(401, "401", "invalid x-client-id or x-api-key")

    # -- checkout -------------------------------------------------------------------------------

    def _page(self, status: int, body_html: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, body_html.encode("utf-8"), "text/html; charset=utf-8", headers)

    def _checkout_page(self, link_id: str) -> None:
        link = self.sandbox.state.link(link_id)
        actions = ACTIONS.format(id=link.id) if link.status == "PENDING" else \
            "<p>This payment link is no longer open.</p>"
        self._page(200, PAGE.format(amount=f"{link.amount:,}".replace(",", "."),
                                    description=html.escape(link.description), order_code=link.order_code,
                                    status=link.status, actions=actions))

    def _checkout_pay(self, link_id: str) -> None:
        state = self.sandbox.pay(link_id, from_checkout=True)["link"]
        self._redirect(self.sandbox.state.link(link_id).return_url, state, cancel=False)

    def _checkout_cancel(self, link_id: str) -> None:
        state = self.sandbox.state.cancel(link_id, "cancelled at checkout")
        self._redirect(self.sandbox.state.link(link_id).cancel_url, state, cancel=True)

    def _redirect(self, url: str, state: dict[str, Any], cancel: bool) -> None:
        target = _with_query(url, {"code": "00", "id": state.get("id") or "", "cancel": "true" if cancel else "false",
                                   "status": state.get("status") or "", "orderCode": str(state.get("orderCode"))})
        self._page(303, f'<a href="{html.escape(target)}">continue</a>', {"Location": target})


class _InjectedFailure(SandboxError):
    """The ``fail_next`` fault: answer HTTP 500."""

    def __init__(self) -> None:
        super().__init__(500, "500", "injected failure")
