"""The Redis baseline of bench/http_rates.py: Falcon + redis-py + one Lua script per purchase.

What a developer reaches for when "SQLite can't take the herd": the stock
lives in Redis and one atomic script decides each purchase in one round trip
(``EVALSHA``, through redis-py's ``register_script``): check the per-user
holding and the stock, decrement the stock, take the holding, record the
order in a hash (order id -> "user_id:quantity"). The body is parsed with
orjson and the answers are pre-shaped bytes, as lean as the service's own
hot path (a stronger baseline than Falcon's default media handling).

Keys for drop ``D``: ``drop:D:stock``, ``drop:D:holdings`` (user_id ->
quantity), ``drop:D:orders`` (id -> "user_id:quantity"), ``drop:D:next``
(the last order id). ``--seed D:STOCK:LIMIT`` (re)creates a drop at start.

Served by bjoern, one process; ``--workers 2`` forks after binding, each
process with its own Redis connection.

    python bench/baselines/redis_app.py --redis-port 6390 --port 8300 --seed 1:1000000000:1
"""

from __future__ import annotations

import argparse
import os
import sys

import falcon
import orjson
import redis

BODY_LIMIT = 4096
PURCHASE_LUA = """
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local quantity = tonumber(ARGV[2])
if held + quantity > tonumber(ARGV[3]) then return -2 end
local stock = tonumber(redis.call('GET', KEYS[1]) or '-1')
if stock < 0 then return -3 end
if stock < quantity then return -1 end
redis.call('DECRBY', KEYS[1], quantity)
redis.call('HINCRBY', KEYS[2], ARGV[1], quantity)
local id = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[3], id, ARGV[1] .. ':' .. ARGV[2])
return id
"""
REFUSALS = {
    -1: (falcon.HTTP_409, orjson.dumps({"error": {"code": "sold_out", "message": "the drop is sold out"}})),
    -2: (falcon.HTTP_409, orjson.dumps({"error": {"code": "per_user_limit", "message": "over the per-user limit"}})),
    -3: (falcon.HTTP_404, orjson.dumps({"error": {"code": "drop_not_found", "message": "no such drop"}})),
}


def keys(drop_id: int | str) -> list[str]:
    prefix = f"drop:{drop_id}:"
    return [prefix + "stock", prefix + "holdings", prefix + "orders", prefix + "next"]


def seed(client: redis.Redis, drop_id: int, stock: int, limit: int) -> None:
    client.delete(*keys(drop_id))
    client.set(keys(drop_id)[0], stock)
    client.set(f"drop:{drop_id}:limit", limit)


class Purchases:
    def __init__(self, client: redis.Redis) -> None:
        self.script = client.register_script(PURCHASE_LUA)
        self.client = client
        self.limits: dict[str, int] = {}

    def limit(self, drop_id: str) -> int:
        if drop_id not in self.limits:
            self.limits[drop_id] = int(self.client.get(f"drop:{drop_id}:limit") or 1)
        return self.limits[drop_id]

    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        try:
            body = orjson.loads(req.bounded_stream.read(BODY_LIMIT + 1))
            user_id = body["user_id"]
            quantity = body.get("quantity", 1)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise falcon.HTTPBadRequest() from None
        if type(user_id) is not str or type(quantity) is not int or not 0 < quantity <= 100:
            raise falcon.HTTPUnprocessableEntity()
        order_id = self.script(keys=keys(drop_id), args=[user_id, quantity, self.limit(drop_id)])
        resp.content_type = falcon.MEDIA_JSON
        if order_id < 0:
            resp.status, resp.data = REFUSALS[order_id]
            return
        resp.status = falcon.HTTP_201
        resp.data = orjson.dumps({"id": order_id, "drop_id": int(drop_id), "user_id": user_id,
                                  "quantity": quantity, "status": "reserved"})


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = b'{"ok":true}'


def create_app(redis_host: str, redis_port: int) -> falcon.App:
    client = redis.Redis(host=redis_host, port=redis_port)
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.add_route("/healthz", Health())
    app.add_route("/api/drops/{drop_id}/purchases", Purchases(client))
    return app


def main(argv: list[str] | None = None) -> int:
    import bjoern

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", metavar="DROP:STOCK:LIMIT", help="(re)create a drop before serving")
    args = parser.parse_args(argv)
    if args.seed:
        drop_id, stock, limit = (int(part) for part in args.seed.split(":"))
        seed(redis.Redis(host=args.redis_host, port=args.redis_port), drop_id, stock, limit)
    sock = bjoern.bind_and_listen(args.host, args.port)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    bjoern.server_run(sock, create_app(args.redis_host, args.redis_port))  # its own connection per process
    return 0


if __name__ == "__main__":
    sys.exit(main())
