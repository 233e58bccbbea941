"""What ``dropsvc serve --demo`` adds: the demo drop, and the PayOS sandbox in-process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dropsvc.config import Config
from dropsvc.drops import DropConflict
from dropsvc.ledger import Engine
from dropsvc.payments.sandbox import SANDBOX_API_KEY, SANDBOX_CHECKSUM_KEY, SANDBOX_CLIENT_ID, PayOSSandbox

DEMO_SLUG = "demo-sneaker"
DEMO_DROP: dict[str, Any] = {
    "slug": DEMO_SLUG,
    "name": "Limited sneaker",
    "description": "A demo drop: 100 pairs, at most 2 per shopper, held 10 minutes until paid.",
    "price": 2_500_000,  # VND
    "total_stock": 100,
    "per_user_limit": 2,
}


def seed_demo(engine: Engine) -> tuple[int, bool]:
    """(the demo drop's id, whether it was created now). Leaves an existing one alone."""
    existing = engine.drop_id_by_slug(DEMO_SLUG)
    if existing is not None:
        return existing, False
    try:
        return engine.create_drop(**DEMO_DROP), True
    except DropConflict:
        # another worker seeded it between our read and our write
        existing = engine.drop_id_by_slug(DEMO_SLUG)
        if existing is None:
            raise
        return existing, False


def start_demo_payments(config: Config) -> tuple[PayOSSandbox | None, Config]:
    """The in-process PayOS sandbox for ``serve --demo`` (unless PayOS is configured).

    Returns the started sandbox (None when a real PayOS is configured) and
    the config pointing at it, so the whole flow works offline at once.
    """
    if config.payos_base_url:
        return None, config
    sandbox = PayOSSandbox(host="127.0.0.1", port=0, client_id=SANDBOX_CLIENT_ID, api_key=SANDBOX_API_KEY,
                           checksum_key=SANDBOX_CHECKSUM_KEY,
                           webhook_url=f"{config.public_url}/webhooks/payos").start()
    return sandbox, replace(config, payos_base_url=sandbox.base_url, payos_client_id=SANDBOX_CLIENT_ID,
                            payos_api_key=SANDBOX_API_KEY, payos_checksum_key=SANDBOX_CHECKSUM_KEY)
