"""GET /healthz: the process answers (liveness; it does not touch the database)."""

from __future__ import annotations

import falcon

HEALTHY = b'{"status":"ok"}'


class Health:
    """Liveness probe; also the cheapest endpoint, the benchmarks' ceiling."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = HEALTHY
