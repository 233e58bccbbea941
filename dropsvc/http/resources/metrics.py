"""GET /metrics: the Prometheus exposition of ``dropsvc.obs.metrics``."""

from __future__ import annotations

import falcon

from dropsvc.obs.metrics import CONTENT_TYPE, Metrics


class MetricsResource:
    """GET /metrics (never cached)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.cache_control = ["no-store"]
        resp.data = self.metrics.render()
