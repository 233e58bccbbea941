"""The Falcon WSGI app (SPEC 6): routes, JSON via orjson, one error envelope everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import falcon
import falcon.media
import orjson

from dropsvc._engine import StorageError
from dropsvc.buyers import Buyers
from dropsvc.checkout import Checkout, payos_client
from dropsvc.config import Config
from dropsvc.drops import DropError
from dropsvc.http.errors import ApiError, serialize_error, storage_unavailable
from dropsvc.http.fast_path import FastPath, HotRoutes, WSGIApp
from dropsvc.http.observer import RequestObserver
from dropsvc.http.operations import add_operations
from dropsvc.http.resources.admin import AdminDropItem, AdminDrops, AdminGuard
from dropsvc.http.resources.challenges import ChallengeResource, Proofs
from dropsvc.http.resources.drops import DropItem, DropList
from dropsvc.http.resources.health import Health
from dropsvc.http.resources.orders import OrderCancel, OrderItem
from dropsvc.http.resources.pages import Site, add_page_routes
from dropsvc.http.resources.payments import OrderCheckout, PayOSWebhook
from dropsvc.http.resources.purchases import ROUTE as PURCHASE_ROUTE
from dropsvc.http.resources.purchases import Purchases
from dropsvc.http.resources.queue import ROUTE as QUEUE_ROUTE
from dropsvc.http.resources.queue import Fairness, FairnessTickets, QueueDocument
from dropsvc.http.resources.tickets import ITEM_ROUTE as TICKET_ROUTE
from dropsvc.http.resources.tickets import TicketItem, Tickets, TicketViews
from dropsvc.ledger import Engine
from dropsvc.logs import get_logger
from dropsvc.tickets import TicketTokens

log = get_logger()


def handle_drop_error(req: falcon.Request, resp: falcon.Response, error: DropError,
                      params: dict[str, Any]) -> None:
    """The engine refused a drop change: 422 invalid_field or 409 with its code."""
    raise ApiError(error.status, error.code, error.message)


def handle_storage_error(req: falcon.Request, resp: falcon.Response, error: StorageError,
                         params: dict[str, Any]) -> None:
    """Storage busy, full, closed...: 503, try again shortly."""
    raise storage_unavailable(req.method, req.path, error)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, error: Exception,
                      params: dict[str, Any]) -> None:
    """A bug: log it with its traceback, answer 500 in the envelope, say nothing more."""
    log.exception("unhandled_error", method=req.method, path=req.path, error=type(error).__name__)
    raise ApiError(500, "internal_error", "internal error")


def json_handler() -> falcon.media.JSONHandler:
    return falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)


def add_routes(app: falcon.App, engine: Engine, config: Config,
               checkout: Checkout) -> tuple[HotRoutes, RequestObserver]:
    """Every route; returns the herd's routes and the request observer (the fast path shares them)."""
    guard = AdminGuard(config.admin_token)
    buyers = Buyers(engine.secret("buyer_cookie_key"), secure=config.public_url.startswith("https://"))
    app.add_route("/healthz", Health())
    app.add_route("/api/drops", DropList(engine))
    app.add_route("/api/drops/{drop_id}", DropItem(engine))
    tokens = TicketTokens(engine.secret("ticket_token_key"))
    purchases = Purchases(engine, buyers, tokens)
    app.add_route(PURCHASE_ROUTE, purchases)
    ticket_views = TicketViews(engine, buyers, tokens)
    proofs = Proofs(engine)
    app.add_route("/api/drops/{drop_id}/tickets", Tickets(ticket_views, proofs))
    app.add_route("/api/drops/{drop_id}/challenge", ChallengeResource(ticket_views, proofs))
    app.add_route(TICKET_ROUTE, TicketItem(ticket_views))
    document = QueueDocument(engine)
    app.add_route(QUEUE_ROUTE, document)
    app.add_route("/api/drops/{drop_id}/fairness", Fairness(engine))
    app.add_route("/api/drops/{drop_id}/fairness/tickets", FairnessTickets(engine))
    app.add_route("/api/orders/{public_ref}", OrderItem(engine))
    app.add_route("/api/orders/{public_ref}/cancel", OrderCancel(engine, checkout.cancel_link_later))
    app.add_route("/api/orders/{public_ref}/checkout", OrderCheckout(checkout))
    app.add_route("/webhooks/payos", PayOSWebhook(engine, config.payos_checksum_key))
    app.add_route("/api/admin/drops", AdminDrops(engine, guard))
    app.add_route("/api/admin/drops/{drop_id}", AdminDropItem(engine, guard))
    # GET /, /orders/{public_ref}, /static/...
    add_page_routes(app, engine, buyers, Site(Path(config.static_dir)) if config.static_dir else None)
    observer = add_operations(app, engine, config, guard)  # /metrics, /readyz, /openapi.json, admin reads
    return HotRoutes(purchases, ticket_views, document), observer


def create_app(engine: Engine, config: Config, checkout: Checkout | None = None) -> falcon.App:
    """The service's Falcon app on an open engine (PayOS from config unless ``checkout`` is given)."""
    return _build(engine, config, checkout)[0]


def serving_app(engine: Engine, config: Config, checkout: Checkout | None = None) -> WSGIApp:
    """What the servers run: the Falcon app behind the fast path (``dropsvc.http.fast_path``)."""
    app, hot, observer = _build(engine, config, checkout)
    return FastPath(app, hot, observer)


def _build(engine: Engine, config: Config,
           checkout: Checkout | None) -> tuple[falcon.App, HotRoutes, RequestObserver]:
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    handlers = {falcon.MEDIA_JSON: json_handler()}
    app.req_options.media_handlers.update(handlers)
    app.resp_options.media_handlers.update(handlers)
    app.req_options.strip_url_path_trailing_slash = False
    app.set_error_serializer(serialize_error)
    # most specific class wins; falcon's own HTTPError/HTTPStatus handlers stay
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(StorageError, handle_storage_error)
    app.add_error_handler(DropError, handle_drop_error)
    return (app, *add_routes(app, engine, config, checkout or Checkout(engine, config, payos_client(config))))
