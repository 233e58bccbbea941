"""Payments under load: 2,000 buyers, stock 500, the sandbox paying 80 % in random order.

Holds are short (2 s) and the expiry worker runs, so stock comes back and sells
again between waves; duplicated and reordered callbacks arrive; some payments
land after their hold expired. At the end the books must balance exactly.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from live_server import Api
from payments_env import open_shop, wait_until

from dropsvc import Engine

BUYERS, STOCK, WAVES, PAY_SHARE = 2000, 500, 4, 0.8


def test_two_thousand_buyers_stock_five_hundred_books_balance(tmp_path):
    shop = open_shop(tmp_path)
    rng = random.Random(20261124)
    try:
        drop = shop.api.create_drop(total_stock=STOCK, per_user_limit=1, hold_seconds=2)
        shop.sandbox.set_faults(duplicate=1, reorder=True, seed=7)
        local = threading.local()

        def client() -> Api:
            if not hasattr(local, "api"):
                local.api = Api(shop.server)
            return local.api

        def reserve_and_link(user: str) -> tuple[str, str] | None:
            reply = client().buy(drop["id"], user)
            if reply.status != 201:
                assert reply.status == 409 and reply.error_code == "sold_out", reply.body
                return None
            ref = reply.json["public_ref"]
            linked = client().post(f"/api/orders/{ref}/checkout")
            assert linked.status == 201, linked.body
            return ref, shop.link_id(linked.json)

        paid_refs: list[str] = []
        outcomes: Counter[str] = Counter()
        per_wave = BUYERS // WAVES
        with ThreadPoolExecutor(8) as pool:
            for wave in range(WAVES):
                users = [f"w{wave}-buyer-{n}" for n in range(per_wave)]
                reserved = [r for r in pool.map(reserve_and_link, users) if r]
                outcomes["reserved"] += len(reserved)
                outcomes["sold_out"] += per_wave - len(reserved)
                to_pay = rng.sample(reserved, int(len(reserved) * PAY_SHARE))
                rng.shuffle(to_pay)
                for ref, link in to_pay:
                    shop.sandbox.pay(link)
                    paid_refs.append(ref)
                shop.sandbox.flush()
                time.sleep(2.3)  # holds of this wave that were not paid expire; stock returns
        assert shop.sandbox.wait_idle(30)
        assert outcomes["reserved"] > STOCK  # expiry put stock back on sale between waves

        with Engine(shop.server.db_path) as engine:
            assert wait_until(lambda: not engine.read("SELECT 1 FROM orders WHERE status = 'reserved'"
                                                      " AND expires_at < ?", (int(time.time() * 1000) - 1500,)))
            assert engine.check() == []
            statuses = dict((row["status"], row["n"]) for row in engine.read(
                "SELECT status, SUM(quantity) AS n FROM orders GROUP BY status"))
            sold = engine.get_drop(drop["id"])["sold"]
            assert statuses.get("paid", 0) + statuses.get("reserved", 0) == sold <= STOCK
            twice = engine.read("SELECT order_id FROM payment_events WHERE action = 'paid'"
                                " GROUP BY order_id HAVING COUNT(*) > 1")
            assert twice == []
            replays = engine.read("SELECT COUNT(*) AS n FROM payment_events")[0]["n"]
            assert replays == len(paid_refs)  # duplicates were acknowledged, recorded once
            final = {row["public_ref"]: row["status"] for row in (
                engine.get_order(ref) for ref in paid_refs)}
        assert set(final.values()) <= {"paid", "refund_required"}
        assert Counter(final.values())["paid"] > 0
        delivered = [d for d in shop.sandbox.deliveries() if d["ok"]]
        assert len(delivered) == 2 * len(paid_refs)
    finally:
        shop.api.close()
        shop.server.stop()
        shop.sandbox.stop()
