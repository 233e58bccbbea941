"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the app's own router.

The paths and methods come from falcon's router (every route added with
``add_route`` and each responder its resource defines), so the document
cannot list a route that does not exist nor miss one that does. What a
route takes and answers is described in :data:`OPERATIONS`, keyed by
(route template, method); a route without a description still appears (as
"undocumented"), and ``tests/integration/test_openapi.py`` fails on it, and
on a description whose route is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import falcon

from dropsvc.http.openapi_schemas import PARAMETERS, SCHEMAS, ref

JSON = "application/json"
PATH_PARAM = re.compile(r"{(\w+)}")
ADMIN = [{"adminBearer": []}]


def json_body(description: str, schema: str | dict[str, Any], **extra: Any) -> dict[str, Any]:
    answer = {"description": description,
              "content": {JSON: {"schema": ref(schema) if isinstance(schema, str) else schema}}}
    answer.update(extra)
    return answer


def error(description: str, **extra: Any) -> dict[str, Any]:
    return json_body(description, "Error", **extra)


def text_body(description: str, *media_types: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}} for media in media_types}}


CLIENT_ERRORS = {"4XX": error("the request was refused (the code says why)")}
BUSY = {"503": error("storage busy: retry after Retry-After",
                     headers={"Retry-After": {"schema": {"type": "string"}}})}
BODY_ERRORS = {"400": error("malformed JSON"), "413": error("body too large"),
               "415": error("not application/json"), "422": error("a field is missing, unknown or out of range")}
ADMIN_ERRORS = {"401": error("missing or wrong bearer token"), "403": error("admin is off: no DROPSVC_ADMIN_TOKEN")}
NOT_MODIFIED = {"304": {"description": "not modified (If-None-Match matched the ETag)"}}


def body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


def params(*names: str) -> list[dict[str, Any]]:
    return [PARAMETERS[name] for name in names]


def operation(summary: str, responses: dict[str, Any], *, tag: str, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": [tag], "responses": responses, **extra}


def page_operation(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return operation(summary, responses, tag="pages")


PAGE = text_body("the page (HTML; the shopper's buyer cookie is set when missing)", "text/html")
ASSET = {"200": text_body("the asset (gzip when accepted)", "text/javascript", "text/css"), **NOT_MODIFIED,
         "404": error("no such asset")}
ICON_ASSET = {"200": {"description": "the icon",
                      "content": {"image/x-icon": {"schema": {"type": "string", "format": "binary"}}}},
              **NOT_MODIFIED, "404": error("no icon installed")}

TICKET_404 = {"404": error("ticket_not_found: no such ticket, or another buyer's")}
BUYER_409 = "buyer_required: no valid buyer cookie"
QUEUE_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/drops/{drop_id}/tickets", "POST"): operation(
        "Join a queue drop's line (the buyer cookie's one ticket)",
        {"201": json_body("joined: the new ticket", "Ticket", headers={"Location": {"schema": {"type": "string"}}}),
         "200": json_body("this buyer's ticket, as it is", "Ticket"),
         "404": error("drop_not_found, or no_queue (an open drop)"),
         "409": error(BUYER_409 + ", queue_closed (the drop has ended; a draw: its entries closed) or"
                             " entries_not_open (a draw before its starts_at)"), **BODY_ERRORS,
         "422": error("invalid_field, or challenge_failed: the line asks for a proof of work and the altcha"
                      " payload is missing, malformed, forged, expired, another buyer's or drop's, wrong or reused"),
         **CLIENT_ERRORS, **BUSY}, tag="queue", requestBody=body("JoinRequest")),
    ("/api/drops/{drop_id}/challenge", "GET"): operation(
        "A proof-of-work challenge to join the line (ALTCHA PoW v2), for the cookie buyer",
        {"200": json_body("the challenge, as the altcha widget takes it (Cache-Control: private, no-store)",
                          "Challenge"),
         "404": error("drop_not_found, no_queue (an open drop), or no_challenge (the line asks for none)"),
         "409": error(BUYER_409), **CLIENT_ERRORS, **BUSY}, tag="queue"),
    ("/api/drops/{drop_id}/tickets/{ticket_id}", "GET"): operation(
        "The buyer's view of a ticket (it checks in, from 10 minutes before the close)",
        {"200": json_body("the ticket (Cache-Control: private, no-store)", "Ticket"), **TICKET_404,
         "409": error(BUYER_409), **CLIENT_ERRORS, **BUSY}, tag="queue"),
    ("/api/drops/{drop_id}/tickets/{ticket_id}", "DELETE"): operation(
        "Leave the line (state left)",
        {"200": json_body("left: the ticket", "Ticket"), **TICKET_404,
         "409": error(BUYER_409 + ", already_left, or ticket_final (used, lapsed, sold_out, ended...)"),
         **CLIENT_ERRORS, **BUSY}, tag="queue"),
    ("/api/drops/{drop_id}/queue", "GET"): operation(
        "The public queue document (the same for everyone; cached about a second)",
        {"200": json_body("the document", "QueueDocument"), **NOT_MODIFIED,
         "404": error("drop_not_found, or no_queue (an open drop)"), **CLIENT_ERRORS, **BUSY},
        tag="queue", parameters=params("if_none_match")),
    ("/api/drops/{drop_id}/fairness", "GET"): operation(
        "The line's commitment and, once the close is recorded, its seed",
        {"200": json_body("commitment and seed", "Fairness"),
         "404": error("drop_not_found, or no_queue (an open drop)"), **CLIENT_ERRORS, **BUSY}, tag="queue"),
    ("/api/drops/{drop_id}/fairness/tickets", "GET"): operation(
        "The line's tickets for the audit, one JSON object a line (what verify-fairness checks)",
        {"200": text_body("one ticket a line, never a buyer", "application/x-ndjson"),
         "404": error("drop_not_found, or no_queue (an open drop)"),
         "409": error("not_revealed: the close is not recorded yet"), **CLIENT_ERRORS, **BUSY}, tag="queue"),
}

LINE_404 = {"404": error("drop_not_found, or no_queue: an open drop has no line")}
LINE_409 = {"409": error("line_ended: the line is over")}


def line_operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An operation of the merchant's hand on a line (admin)."""
    return operation(summary, {**LINE_404, **responses, **ADMIN_ERRORS, **CLIENT_ERRORS, **BUSY}, tag="admin",
                     security=ADMIN, **extra)


LINE_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/admin/drops/{drop_id}/line", "GET"): line_operation(
        "A line's figures: tickets by state, checked in, paused, admissions",
        {"200": json_body("the figures", "LineReport")}),
    ("/api/admin/drops/{drop_id}/line/pause", "POST"): line_operation(
        "Pause admission (windows still run out; nobody new is admitted)",
        {"200": json_body("the figures after", "LineReport"), **LINE_409}),
    ("/api/admin/drops/{drop_id}/line/resume", "POST"): line_operation(
        "Resume admission, from the earliest waiting ticket",
        {"200": json_body("the figures after", "LineReport"), **LINE_409}),
    ("/api/admin/drops/{drop_id}/line/extend", "POST"): line_operation(
        "Lengthen the windows of admitted tickets (all, or one)",
        {"200": json_body("how many were extended, and the figures", "LineExtended"),
         "404": error("drop_not_found, no_queue or ticket_not_found"),
         "409": error("line_ended, or not_admitted: that ticket is not admitted"), **BODY_ERRORS},
        requestBody=body("LineExtend")),
    ("/api/admin/drops/{drop_id}/tickets/{ticket_id}/void", "POST"): line_operation(
        "Void a ticket: out of the line, final, shown as voided in the fairness export",
        {"200": json_body("the ticket, now voided", "AdminTicket"),
         "404": error("drop_not_found, no_queue or ticket_not_found"),
         "409": error("ticket_final: used, lapsed, left, ... ; or line_ended")}),
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/healthz", "GET"): operation("Liveness: the process answers", {"200": json_body("alive", "Health")},
                                   tag="operations"),
    ("/readyz", "GET"): operation(
        "Readiness: database writable, migrations current, PayOS config complete or absent",
        {"200": json_body("ready", "Readiness"), "503": json_body("not ready: `failed` names the checks",
                                                                  "Readiness")}, tag="operations"),
    ("/metrics", "GET"): operation("Prometheus metrics (text exposition format 0.0.4)",
                                   {"200": text_body("the metrics", "text/plain")}, tag="operations"),
    ("/openapi.json", "GET"): operation("This document", {"200": json_body("OpenAPI 3.1", {"type": "object"})},
                                        tag="operations"),
    ("/api/drops", "GET"): operation(
        "Every drop, by start time", {"200": json_body("the drops", "DropList"), **NOT_MODIFIED, **BUSY},
        tag="drops", parameters=params("if_none_match")),
    ("/api/drops/{drop_id}", "GET"): operation(
        "One drop with `remaining` and `status`",
        {"200": json_body("the drop", "Drop"), **NOT_MODIFIED, "404": error("no such drop"), **BUSY},
        tag="drops", parameters=params("if_none_match")),
    ("/api/drops/{drop_id}/purchases", "POST"): operation(
        "Reserve units of a drop (one click, one purchase)",
        {"201": json_body("reserved: the new order", "Order",
                          headers={"Location": {"schema": {"type": "string"}}}),
         "200": json_body("the same Idempotency-Key again: the same order", "Order"),
         "404": error("no such drop"),
         "409": json_body("refused: sold_out, per_user_limit, not_started or ended; a queue drop also"
                          " buyer_required (no valid buyer cookie) or not_admitted (with error.ticket_state)",
                          "PurchaseRefusal"),
         **BODY_ERRORS, **CLIENT_ERRORS, **BUSY},
        tag="purchases", parameters=params("idempotency_key", "admission_ticket"), requestBody=body("PurchaseRequest")),
    **QUEUE_OPERATIONS,
    **LINE_OPERATIONS,
    ("/api/orders/{public_ref}", "GET"): operation(
        "An order", {"200": json_body("the order", "Order"), "404": error("no such order"), **BUSY},
        tag="orders"),
    ("/api/orders/{public_ref}/cancel", "POST"): operation(
        "Cancel a reserved order: its stock goes back",
        {"200": json_body("cancelled (now or before)", "Order"), "404": error("no such order"),
         "409": error("paid, expired or awaiting a refund"), **CLIENT_ERRORS, **BUSY}, tag="orders"),
    ("/api/orders/{public_ref}/checkout", "POST"): operation(
        "The order's PayOS payment link (created once)",
        {"201": json_body("link created", "Order"), "200": json_body("the existing link", "Order"),
         "404": error("no such order"), "409": error("the order can no longer be paid"),
         "502": error("PayOS refused or answered wrongly"),
         "503": error("payments off, PayOS unreachable, or storage busy"), **CLIENT_ERRORS}, tag="orders"),
    ("/webhooks/payos", "POST"): operation(
        "PayOS payment callback (signed with the checksum key)",
        {"200": json_body("recorded and applied once", "WebhookAck"),
         "400": error("bad signature, malformed JSON or unusable data"), **CLIENT_ERRORS,
         "503": error("payments are not configured, or storage busy")},
        tag="payments", requestBody=body("Webhook")),
    ("/api/admin/drops", "POST"): operation(
        "Create a drop", {"201": json_body("the drop", "Drop", headers={"Location": {"schema": {"type": "string"}}}),
                          "409": error("slug_taken"), **BODY_ERRORS, **ADMIN_ERRORS, **CLIENT_ERRORS, **BUSY},
        tag="admin", security=ADMIN, requestBody=body("NewDrop")),
    ("/api/admin/drops/{drop_id}", "PATCH"): operation(
        "Change a drop (stock never below sold)",
        {"200": json_body("the drop", "Drop"), "404": error("no such drop"),
         "409": error("slug_taken, stock_below_sold, or tickets_exist / line_closed (a line's fields)"),
         **BODY_ERRORS, **ADMIN_ERRORS, **CLIENT_ERRORS, **BUSY},
        tag="admin", security=ADMIN, requestBody=body("DropChanges")),
    ("/api/admin/drops/{drop_id}/orders", "GET"): operation(
        "A drop's orders, by id, a page at a time (filter by status)",
        {"200": json_body("a page", "AdminOrderPage"), "404": error("no such drop"),
         "422": error("bad limit, after or status"), **ADMIN_ERRORS, **CLIENT_ERRORS, **BUSY},
        tag="admin", security=ADMIN, parameters=params("limit", "after", "order_status")),
    ("/api/admin/orders/{public_ref}", "GET"): operation(
        "An order with its payment events and history",
        {"200": json_body("the order", "AdminOrderDetail"), "404": error("no such order"), **ADMIN_ERRORS,
         **CLIENT_ERRORS, **BUSY}, tag="admin", security=ADMIN),
    ("/api/admin/payment-events", "GET"): operation(
        "PayOS callbacks as recorded, a page at a time (e.g. action=amount_mismatch)",
        {"200": json_body("a page", "PaymentEventPage"), "422": error("bad limit, after or action"),
         **ADMIN_ERRORS, **CLIENT_ERRORS, **BUSY},
        tag="admin", security=ADMIN, parameters=params("limit", "after", "action")),
    ("/", "GET"): page_operation("The shopper page", {"200": PAGE, "404": error("the page is not installed")}),
    ("/", "HEAD"): page_operation("The shopper page's headers", {"200": {"description": "headers only"},
                                                                "404": {"description": "not installed"}}),
    ("/orders/{public_ref}", "GET"): page_operation(
        "The order page (PayOS's return and cancel URL)",
        {"200": PAGE, "404": text_body("the page, for an unknown order", "text/html")}),
    ("/orders/{public_ref}", "HEAD"): page_operation(
        "The order page's headers", {"200": {"description": "headers only"},
                                     "404": {"description": "unknown order"}}),
    ("/static/{name}", "GET"): page_operation("A static asset of the page (app.js, queue.js, ...)", ASSET),
    ("/static/{name}", "HEAD"): page_operation("A static asset's headers", ASSET),
    ("/static/vendor/{name}", "GET"): page_operation("A vendored asset (Alpine.js, ALTCHA)", ASSET),
    ("/static/vendor/{name}", "HEAD"): page_operation("A vendored asset's headers", ASSET),
    ("/favicon.ico", "GET"): page_operation("The site icon (static/favicon.ico)", ICON_ASSET),
    ("/favicon.ico", "HEAD"): page_operation("The site icon's headers", ICON_ASSET),
}

# the static routes take a version in the query
for _key in (("/static/{name}", "GET"), ("/static/{name}", "HEAD"), ("/static/vendor/{name}", "GET"),
             ("/static/vendor/{name}", "HEAD"), ("/favicon.ico", "GET"), ("/favicon.ico", "HEAD")):
    OPERATIONS[_key]["parameters"] = params("v", "if_none_match")


def app_routes(app: falcon.App) -> Iterator[tuple[str, str]]:
    """(template, method) for every responder a resource defines (not falcon's 405/OPTIONS defaults)."""
    nodes = list(app._router._roots)
    while nodes:
        node = nodes.pop(0)
        nodes.extend(node.children)
        if node.resource is None:
            continue
        for method, responder in node.method_map.items():
            if getattr(responder, "__self__", None) is node.resource:
                yield node.uri_template, method


def undocumented(app: falcon.App) -> list[tuple[str, str]]:
    """Routes of the app that OPERATIONS does not describe."""
    return sorted(set(app_routes(app)) - set(OPERATIONS))


def stale(app: falcon.App) -> list[tuple[str, str]]:
    """Descriptions in OPERATIONS whose route the app does not have."""
    return sorted(set(OPERATIONS) - set(app_routes(app)))


def version() -> str:
    try:
        return metadata.version("limited-drop")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(app: falcon.App) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    paths: dict[str, dict[str, Any]] = {}
    for template, method in sorted(app_routes(app)):
        described = OPERATIONS.get((template, method))
        op = dict(described) if described else {"summary": "(undocumented)",
                                                 "responses": {"default": {"description": "undocumented"}}}
        given = {param["name"] for param in op.get("parameters", [])}
        path_params = [PARAMETERS[name] if name in PARAMETERS else
                       {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                       for name in PATH_PARAM.findall(template) if name not in given]
        op["parameters"] = path_params + list(op.get("parameters", []))
        if not op["parameters"]:
            del op["parameters"]
        op["operationId"] = method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", template).rstrip("_")
        paths.setdefault(template, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "limited-drop", "version": version(),
                 "description": "Sell a fixed stock to a thundering herd without ever overselling."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"adminBearer": {"type": "http", "scheme": "bearer",
                                                "description": "DROPSVC_ADMIN_TOKEN"}},
        },
    }
