"""A thundering herd over real HTTP: 3,200 buyers, 100 units, not one oversold."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from live_server import exchange

from dropsvc import Engine

BUYERS = 3_200
THREADS = 32
STOCK = 100


def test_herd_sells_exactly_the_stock(api, service):
    drop = api.create_drop(total_stock=STOCK, per_user_limit=1)
    path = f"/api/drops/{drop['id']}/purchases"
    start = threading.Barrier(THREADS)

    def buyer_thread(index: int) -> list[tuple[str, int, str | None, dict | None]]:
        conn = service.connect()
        results = []
        start.wait()
        try:
            for n in range(BUYERS // THREADS):
                user = f"buyer-{index}-{n}"
                body = f'{{"user_id": "{user}", "quantity": 1}}'.encode()
                reply = exchange(conn, "POST", path, body, {"Content-Type": "application/json"})
                payload = reply.json
                code = payload["error"]["code"] if reply.status >= 400 else None
                results.append((user, reply.status, code, payload if reply.status == 201 else None))
        finally:
            conn.close()
        return results

    with ThreadPoolExecutor(THREADS) as pool:
        replies = [r for batch in pool.map(buyer_thread, range(THREADS)) for r in batch]

    assert len(replies) == BUYERS
    assert len({user for user, *_ in replies}) == BUYERS
    outcomes = Counter((status, code) for _, status, code, _ in replies)
    assert outcomes == {(201, None): STOCK, (409, "sold_out"): BUYERS - STOCK}

    orders = [order for *_, order in replies if order is not None]
    assert len({order["public_ref"] for order in orders}) == STOCK
    assert all(order["quantity"] == 1 and order["status"] == "reserved" for order in orders)
    assert {order["user_id"] for order in orders} == {user for user, status, *_ in replies if status == 201}

    shown = api.get(f"/api/drops/{drop['id']}").json
    assert (shown["sold"], shown["remaining"], shown["status"]) == (STOCK, 0, "sold_out")

    with Engine(service.db_path, readers=1) as engine:
        assert engine.check() == []
        assert engine.get_drop(drop["id"])["sold"] == STOCK
        count = engine.read("SELECT COUNT(*) AS n FROM orders WHERE drop_id = ?", (drop["id"],))
        assert count == [{"n": STOCK}]
