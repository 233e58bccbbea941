"""``dropsvc payos-sandbox``: run the offline PayOS until SIGINT or SIGTERM.

Credentials come from the flags, else PAYOS_CLIENT_ID / PAYOS_API_KEY /
PAYOS_CHECKSUM_KEY, else the sandbox defaults. One JSON log line on stderr
says where it listens. Exit codes: 0 stopped, 1 could not start, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Mapping, Sequence

from dropsvc.logs import configure
from dropsvc.payments.sandbox.server import SANDBOX_API_KEY, SANDBOX_CHECKSUM_KEY, SANDBOX_CLIENT_ID, PayOSSandbox

DEFAULT_PORT = 9080


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return int(text)


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or " " in text:
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL")
    return text


def _credential(text: str) -> str:
    if not text or not (text.isascii() and text.isprintable()) or " " in text:
        raise argparse.ArgumentTypeError("must be printable ASCII without spaces")
    return text


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dropsvc payos-sandbox",
                                     description="An offline PayOS on loopback: API, checkout page, signed webhooks.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)")
    parser.add_argument("--webhook-url", type=_url, default=None, help="where paid callbacks are POSTed")
    parser.add_argument("--client-id", type=_credential, default=env.get("PAYOS_CLIENT_ID") or SANDBOX_CLIENT_ID)
    parser.add_argument("--api-key", type=_credential, default=env.get("PAYOS_API_KEY") or SANDBOX_API_KEY)
    parser.add_argument("--checksum-key", type=_credential,
                        default=env.get("PAYOS_CHECKSUM_KEY") or SANDBOX_CHECKSUM_KEY)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def run_sandbox_cli(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
                    stop: threading.Event | None = None) -> int:
    """Parse ``argv``, serve the sandbox until SIGINT/SIGTERM (or ``stop`` is set); the exit code."""
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    log = configure(args.log_level, secrets=(args.api_key, args.checksum_key))
    stop = stop or threading.Event()
    sandbox = PayOSSandbox(args.host, args.port, client_id=args.client_id, api_key=args.api_key,
                           checksum_key=args.checksum_key, webhook_url=args.webhook_url)
    try:
        sandbox.start()
    except OSError as error:
        log.error("payos_sandbox_failed", host=args.host, port=args.port, error=str(error))
        return 1
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        log.info("payos_sandbox_listening", url=sandbox.base_url, client_id=args.client_id,
                 webhook_url=args.webhook_url, checkout=f"{sandbox.base_url}/checkout/{{paymentLinkId}}",
                 control=f"{sandbox.base_url}/sandbox/")
        while not stop.wait(0.5):
            pass
        log.info("payos_sandbox_stopping", url=sandbox.base_url)
    finally:
        sandbox.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
