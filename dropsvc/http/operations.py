"""Operating the service over HTTP (SPEC 10): metrics, readiness, the OpenAPI document, admin reads, the line.

``add_operations`` is called by ``app.add_routes``: it adds the request
observer (metrics and access log, one middleware) and the routes
``/metrics``, ``/readyz``, ``/openapi.json``, the admin reads and the merchant's hand on a line.
"""

from __future__ import annotations

import falcon

from dropsvc.config import Config
from dropsvc.http.observer import RequestObserver
from dropsvc.http.resources.admin import AdminGuard
from dropsvc.http.resources.admin_line import AdminLine, AdminLineExtend, AdminLineSwitch, AdminTicketVoid
from dropsvc.http.resources.admin_orders import AdminDropOrders, AdminOrderItem, AdminPaymentEvents
from dropsvc.http.resources.metrics import MetricsResource
from dropsvc.http.resources.openapi import OpenApiDocument
from dropsvc.http.resources.readiness import Ready
from dropsvc.ledger import Engine
from dropsvc.obs.access_log import AccessLog
from dropsvc.obs.metrics import Metrics


def add_operations(app: falcon.App, engine: Engine, config: Config, guard: AdminGuard) -> RequestObserver:
    """Observe every request; add the operations and admin-read routes. Returns the request observer."""
    metrics = Metrics(engine, config.workers, threaded=config.server == "granian")
    access_log = AccessLog(config.access_log_sample, config.access_log_max_per_s)
    observer = RequestObserver(metrics.requests, access_log)
    app.add_middleware(observer)
    app.add_route("/metrics", MetricsResource(metrics))
    app.add_route("/readyz", Ready(engine, config))
    app.add_route("/openapi.json", OpenApiDocument(app))
    app.add_route("/api/admin/drops/{drop_id}/orders", AdminDropOrders(engine, guard))
    app.add_route("/api/admin/orders/{public_ref}", AdminOrderItem(engine, guard))
    app.add_route("/api/admin/payment-events", AdminPaymentEvents(engine, guard))
    app.add_route("/api/admin/drops/{drop_id}/line", AdminLine(engine, guard))
    app.add_route("/api/admin/drops/{drop_id}/line/pause", AdminLineSwitch(engine, guard, paused=True))
    app.add_route("/api/admin/drops/{drop_id}/line/resume", AdminLineSwitch(engine, guard, paused=False))
    app.add_route("/api/admin/drops/{drop_id}/line/extend", AdminLineExtend(engine, guard))
    app.add_route("/api/admin/drops/{drop_id}/tickets/{ticket_id}/void", AdminTicketVoid(engine, guard))
    if metrics.path is not None:  # other workers' scrapes need this one's counts without it being asked
        metrics.start()
    return observer
