"""GET /api/drops and GET /api/drops/{drop_id}: drops as shoppers see them, with ETags."""

from __future__ import annotations

import hashlib

import falcon

from dropsvc.drops import drop_etag, present_drop
from dropsvc.http.errors import ApiError, not_found
from dropsvc.http.resources.common import etag_matches, parse_id, send_json
from dropsvc.ledger import Engine

# the same for everyone and read by the whole herd: a cache may keep it one second (nginx's
# micro-cache in front answers the herd; deploy/nginx.conf.template), then revalidates (ETag)
CACHE_CONTROL = "public, max-age=1"


def drop_not_found(drop_id: object) -> ApiError:
    return not_found("drop_not_found", f"no drop with id {drop_id}")


def drop_number(drop_id: str) -> int:
    """The path's drop id as a number, or 404 drop_not_found (whether the drop exists is the caller's read)."""
    number = parse_id(drop_id)
    if number is None:
        raise drop_not_found(drop_id)
    return number


def list_etag(etags: list[str]) -> str:
    """A strong ETag over the drops' own ETags, in order."""
    return '"' + hashlib.blake2b("".join(etags).encode(), digest_size=12).hexdigest() + '"'


def answer_with_etag(req: falcon.Request, resp: falcon.Response, payload: object, etag: str) -> None:
    """200 with the payload, or 304 when the client already has this version."""
    resp.set_header("ETag", etag)
    resp.cache_control = [CACHE_CONTROL]
    if etag_matches(req, etag):
        resp.status = 304
        return
    send_json(resp, payload)


class DropList:
    """GET /api/drops: every drop, by start time, as ``{"drops": [...]}``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        drops = [present_drop(row) for row in self.engine.list_drops()]
        etag = list_etag([drop_etag(drop) for drop in drops])
        answer_with_etag(req, resp, {"drops": drops}, etag)


class DropItem:
    """GET /api/drops/{drop_id}: one drop with ``remaining`` and ``status``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        number = parse_id(drop_id)
        row = None if number is None else self.engine.get_drop(number)
        if row is None:
            raise drop_not_found(drop_id)
        drop = present_drop(row)
        answer_with_etag(req, resp, drop, drop_etag(drop))
