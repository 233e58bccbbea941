"""The ceilings of bench/http_rates.py: what a server configuration answers with no work behind it.

A tiny Falcon app served exactly like ``dropsvc serve`` (the same runners of
``dropsvc.run.server``: bjoern or meinheld, one process or pre-forked workers; or
granian with its blocking threads), answering:

- ``GET /hello``: a trivial JSON object, serialised with orjson per request;
- ``POST /api/drops/{drop_id}/purchases``: the purchase body read (bounded) and
  parsed with orjson, then a fixed 409 ``sold_out`` envelope; no database.

    python -m bench.baselines.ceiling_app --server bjoern --workers 2 --port 8100
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import falcon
import orjson

BODY_LIMIT = 4096
SOLD_OUT = orjson.dumps({"error": {"code": "sold_out", "message": "the drop is sold out"}})


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps({"hello": "world"})


class FixedRefusal:
    def on_post(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        body = orjson.loads(req.bounded_stream.read(BODY_LIMIT + 1) or b"null")
        if type(body) is not dict:
            raise falcon.HTTPBadRequest()
        resp.status = 409
        resp.content_type = falcon.MEDIA_JSON
        resp.data = SOLD_OUT


def create_app() -> falcon.App:
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.add_route("/hello", Hello())
    app.add_route("/api/drops/{drop_id}/purchases", FixedRefusal())
    return app


def granian_app() -> Any:
    """granian's per-worker factory."""
    return create_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=("bjoern", "meinheld", "granian"), default="bjoern")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16, help="granian's blocking threads per worker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    if args.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian("bench.baselines.ceiling_app:granian_app", address=args.host, port=args.port,
                interface=Interfaces.WSGI, workers=args.workers, blocking_threads=args.threads, factory=True,
                log_enabled=False, workers_kill_timeout=30).serve()
        return 0
    from dropsvc.config import Config
    from dropsvc.logs import configure
    from dropsvc.run.server import serve

    config = Config(host=args.host, port=args.port, workers=args.workers, server=args.server,
                    threads=args.threads, log_level="WARNING")
    log = configure(config.log_level, config.secrets)
    serve(config, log, lambda: (create_app(), lambda: None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
