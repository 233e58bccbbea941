"""Admin (SPEC 6): POST /api/admin/drops and PATCH /api/admin/drops/{drop_id}.

Behind ``Authorization: Bearer <DROPSVC_ADMIN_TOKEN>``, compared in constant
time. No token configured: admin is off (403). The engine validates the
fields, fair admission's among them (SPEC 11); its DropError (422 invalid_field,
409 slug_taken / stock_below_sold / tickets_exist / line_closed)
is turned into the envelope by the app's error handler.
"""

from __future__ import annotations

import hmac
from typing import Any

import falcon

from dropsvc.drops import ADMISSION_FIELDS, EDITABLE_FIELDS, OPTIONAL_FIELDS, REQUIRED_FIELDS, present_drop
from dropsvc.http.errors import ApiError, invalid_field
from dropsvc.http.resources.common import read_json_object, send_json
from dropsvc.http.resources.drops import drop_not_found, drop_number
from dropsvc.ledger import Engine
from dropsvc.logs import get_logger

BODY_LIMIT = 64 * 1024
CREATE_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS + ADMISSION_FIELDS)
PATCH_FIELDS = frozenset(EDITABLE_FIELDS + ADMISSION_FIELDS)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dropsvc admin"'}

log = get_logger()


class AdminGuard:
    """Checks the bearer token of an admin request."""

    def __init__(self, token: str | None) -> None:
        self._token = None if token is None else token.encode()

    def check(self, req: falcon.Request) -> None:
        if self._token is None:
            raise ApiError(403, "admin_disabled", "admin is off: no DROPSVC_ADMIN_TOKEN is configured")
        scheme, _, given = (req.get_header("Authorization") or "").partition(" ")
        given_bytes = given.strip().encode("utf-8", "surrogatepass")
        # compare even when the scheme is wrong, so timing says nothing about the token
        matches = hmac.compare_digest(given_bytes, self._token)
        if scheme.lower() != "bearer" or not matches:
            raise ApiError(401, "unauthorized", "a valid admin bearer token is required", CHALLENGE)


def checked_fields(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """The body's fields, 422 on a name the engine does not take."""
    for name in body:
        if name not in allowed:
            raise invalid_field(f"unknown field {name[:64]!r}")
    return body


def admin_only(req: falcon.Request, resp: falcon.Response, resource: AdminResource, params: dict[str, Any]) -> None:
    """Falcon ``before`` hook of every admin responder: the bearer token, checked first."""
    resource.guard.check(req)


class AdminResource:
    """An admin route: the engine and the bearer-token guard (``@falcon.before(admin_only)`` on each class)."""

    def __init__(self, engine: Engine, guard: AdminGuard) -> None:
        self.engine = engine
        self.guard = guard


@falcon.before(admin_only)
class AdminDrops(AdminResource):
    """POST /api/admin/drops: create a drop, 201 with it as shoppers will see it."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = checked_fields(read_json_object(req, BODY_LIMIT), CREATE_FIELDS)
        drop_id = self.engine.create_drop(**fields)
        drop = present_drop(self.engine.get_drop(drop_id))
        log.info("drop_created", drop_id=drop_id, slug=drop["slug"], total_stock=drop["total_stock"])
        resp.location = f"/api/drops/{drop_id}"
        send_json(resp, drop, 201)


@falcon.before(admin_only)
class AdminDropItem(AdminResource):
    """PATCH /api/admin/drops/{drop_id}: change fields; stock never below sold."""

    def on_patch(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = drop_number(drop_id)
        changes = checked_fields(read_json_object(req, BODY_LIMIT), PATCH_FIELDS)
        row = self.engine.update_drop(number, **changes)
        if row is None:
            raise drop_not_found(drop_id)
        log.info("drop_updated", drop_id=number, fields=sorted(changes))
        send_json(resp, present_drop(row))
