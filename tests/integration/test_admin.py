"""Admin over HTTP: bearer token, create, patch, and the engine's refusals (SPEC 6)."""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie

import pytest
from live_server import Api

from dropsvc.buyers import COOKIE_NAME
from dropsvc.drops import ADMISSION_FIELDS


def test_admin_is_off_without_a_token(start_server):
    server = start_server(admin_token=None)
    client = Api(server)
    created = client.post("/api/admin/drops", {"slug": "x", "name": "X", "price": 1, "total_stock": 1},
                          {"Authorization": "Bearer anything"})
    assert (created.status, created.error_code) == (403, "admin_disabled")
    patched = client.post("/api/admin/drops/1", {"total_stock": 5}, method="PATCH")
    assert (patched.status, patched.error_code) == (403, "admin_disabled")
    assert client.get("/api/drops").json == {"drops": []}
    client.close()


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer\tx",
    "Bearer é€".encode().decode("latin-1"),  # UTF-8 bytes on the wire
], ids=["missing", "empty", "scheme-only", "blank-token", "wrong", "basic", "tab", "non-ascii"])
def test_wrong_credentials_are_401(api, snapshot, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    before = snapshot()
    body = b'{"slug": "never", "name": "Never", "price": 1, "total_stock": 1}'
    reply = api.request("POST", "/api/admin/drops", body, headers)
    assert (reply.status, reply.error_code) == (401, "unauthorized")
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert snapshot() == before


def test_token_prefix_or_extension_is_not_the_token(api, service):
    for token in (service.admin_token[:-1], service.admin_token + "x", service.admin_token.upper()):
        reply = api.request("POST", "/api/admin/drops", b"{}",
                            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        assert reply.status == 401


def test_create_answers_201_with_the_drop(api):
    reply = api.admin("POST", "/api/admin/drops", {
        "slug": "air-2025", "name": "Air 2025", "price": 3_200_000, "total_stock": 50,
        "description": "Numbered pairs", "per_user_limit": 2, "hold_seconds": 300,
    })
    assert reply.status == 201
    drop = reply.json
    assert reply.headers["location"] == f"/api/drops/{drop['id']}"
    assert drop["slug"] == "air-2025" and drop["currency"] == "VND"
    assert (drop["total_stock"], drop["sold"], drop["remaining"], drop["status"]) == (50, 0, 50, "live")
    assert (drop["per_user_limit"], drop["hold_seconds"], drop["ends_at"]) == (2, 300, None)
    assert api.get(reply.headers["location"]).json == drop

    taken = api.admin("POST", "/api/admin/drops", {"slug": "air-2025", "name": "Again", "price": 1,
                                                   "total_stock": 1})
    assert (taken.status, taken.error_code) == (409, "slug_taken")


@pytest.mark.parametrize(("change", "field"), [
    ({"price": -1}, "price"),
    ({"price": "100"}, "price"),
    ({"total_stock": 0}, "total_stock"),
    ({"total_stock": True}, "total_stock"),
    ({"slug": "Not A Slug"}, "slug"),
    ({"name": "   "}, "name"),
    ({"currency": "USD"}, "currency"),
    ({"per_user_limit": 0}, "per_user_limit"),
    ({"image_url": "javascript:alert(1)"}, "image_url"),
    ({"starts_at": 10, "ends_at": 5}, "ends_at"),
    ({"colour": "red"}, "colour"),
    ({"self": 1}, "self"),
    ({"sold": 5}, "sold"),
], ids=lambda value: str(value) if isinstance(value, str) else None)
def test_create_refuses_bad_fields(api, snapshot, change, field):
    body = {"slug": "bad-fields", "name": "Bad", "price": 1, "total_stock": 1, **change}
    before = snapshot()
    reply = api.admin("POST", "/api/admin/drops", body)
    assert (reply.status, reply.error_code) == (422, "invalid_field"), reply.body
    assert field in reply.json["error"]["message"]
    assert snapshot() == before


@pytest.mark.parametrize("missing", ["slug", "name", "price", "total_stock"])
def test_create_requires_the_core_fields(api, missing):
    body = {"slug": "missing-one", "name": "M", "price": 1, "total_stock": 1}
    del body[missing]
    reply = api.admin("POST", "/api/admin/drops", body)
    assert (reply.status, reply.error_code) == (422, "invalid_field")
    assert missing in reply.json["error"]["message"]


def test_patch_changes_fields_but_never_stock_below_sold(api, snapshot):
    drop = api.create_drop(total_stock=5, per_user_limit=3)
    path = f"/api/admin/drops/{drop['id']}"
    assert api.buy(drop["id"], "ivy", 3).status == 201

    before = snapshot()
    below = api.admin("PATCH", path, {"total_stock": 2})
    assert (below.status, below.error_code) == (409, "stock_below_sold")
    assert snapshot() == before

    exact = api.admin("PATCH", path, {"total_stock": 3, "name": "Renamed"})
    assert exact.status == 200
    assert (exact.json["total_stock"], exact.json["remaining"], exact.json["status"]) == (3, 0, "sold_out")
    assert exact.json["name"] == "Renamed"
    assert api.get(f"/api/drops/{drop['id']}").json == exact.json

    grown = api.admin("PATCH", path, {"total_stock": 10})
    assert (grown.status, grown.json["remaining"], grown.json["status"]) == (200, 7, "live")
    assert api.buy(drop["id"], "jack").status == 201


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/admin/drops/987654321", {"name": "Ghost"}, 404, "drop_not_found"),
    ("/api/admin/drops/abc", {"name": "Ghost"}, 404, "drop_not_found"),
    ("/api/admin/drops/{drop}", {}, 422, "invalid_field"),
    ("/api/admin/drops/{drop}", {"drop_id": 1}, 422, "invalid_field"),
    ("/api/admin/drops/{drop}", {"currency": "VND"}, 422, "invalid_field"),
    ("/api/admin/drops/{drop}", {"price": 1.5}, 422, "invalid_field"),
    ("/api/admin/drops/{drop}", [1, 2], 422, "invalid_field"),
], ids=["unknown", "not-an-id", "empty", "kwarg-name", "not-editable", "float", "array"])
def test_patch_refusals(api, snapshot, path, body, status, code):
    drop = api.create_drop()
    before = snapshot()
    reply = api.admin("PATCH", path.format(drop=drop["id"]), body)
    assert (reply.status, reply.error_code) == (status, code), reply.body
    assert snapshot() == before


def test_a_queue_drop_is_made_and_changed_through_the_admin_routes(api):
    created = api.create_drop(total_stock=10, admission="queue", admit_seconds=45)
    assert {field: created[field] for field in ADMISSION_FIELDS} == {
        "admission": "queue", "admit_seconds": 45, "admission_margin": 2, "entries_close_at": None,
        "challenge": "none", "pow_algorithm": None, "pow_cost": None}
    assert created["commitment"] == api.get(f"/api/drops/{created['id']}/fairness").json["commitment"]
    assert re.fullmatch("[0-9a-f]{64}", created["commitment"])
    assert api.get(f"/api/drops/{created['id']}").json == created

    opened = api.create_drop()
    assert (opened["admission"], opened["admit_seconds"], opened["admission_margin"], opened["commitment"]) == (
        "open", None, None, None)
    path = f"/api/admin/drops/{opened['id']}"
    queued = api.admin("PATCH", path, {"admission": "queue", "admission_margin": 0})
    assert queued.status == 200, queued.body
    assert (queued.json["admission"], queued.json["admit_seconds"], queued.json["admission_margin"]) == (
        "queue", 120, 0)
    assert queued.json["commitment"] == api.get(f"/api/drops/{opened['id']}/fairness").json["commitment"]
    assert api.get(f"/api/drops/{opened['id']}").json == queued.json
    back = api.admin("PATCH", path, {"admission": "open"})
    assert (back.status, back.json["admit_seconds"], back.json["commitment"]) == (200, None, None)


T0 = 10**12  # a draw's times in the refusals: entries from T0, the draw a minute later
DRAW_TIMES = {"starts_at": T0, "entries_close_at": T0 + 60_000}


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"admission": "draw"}, "entries_close_at", "entries_close_at is required for a draw"),
    ({"admission": "draw", **DRAW_TIMES, "entries_close_at": T0}, "entries_close_at", "must be after starts_at"),
    ({"admission": "draw", **DRAW_TIMES, "ends_at": T0 + 3_600_000}, "entries_close_at", "ends_at - admit_seconds"),
    ({"admission": "draw", **DRAW_TIMES, "ends_at": T0 + 120_000, "admit_seconds": 61}, "entries_close_at",
     "ends_at - admit_seconds"),
    ({"admission": "draw", **DRAW_TIMES, "admission_margin": 1}, "admission_margin", "always 0 for a draw"),
    ({"admission": "draw", **DRAW_TIMES, "entries_close_at": 1.5}, "entries_close_at", "must be an integer"),
    ({"entries_close_at": T0}, "entries_close_at", "for draw drops only"),
    ({"admission": "fifo"}, "admission", "admission must be 'open', 'queue' or 'draw'"),
    ({"admit_seconds": 60}, "admit_seconds", "for queue drops only"),
    ({"admission": "queue", "admit_seconds": 0}, "admit_seconds", "admit_seconds must be from 1"),
    ({"admission": "queue", "admission_margin": -1}, "admission_margin", "admission_margin must be from 0"),
    ({"admission": "queue", "admission_margin": "2"}, "admission_margin", "must be an integer"),
    ({"admission": "queue", "entries_close_at": 10**12}, "entries_close_at", "for draw drops only"),
    ({"commitment": "0" * 64}, "commitment", "commitment"),
    ({"challenge": "pow"}, "challenge", "for a drop with a line"),
    ({"admission": "queue", "challenge": "captcha"}, "challenge", "challenge must be 'none' or 'pow'"),
    ({"admission": "queue", "pow_cost": 5}, "pow_cost", "whose challenge is pow"),
    ({"admission": "queue", "challenge": "pow", "pow_cost": 0}, "pow_cost", "pow_cost must be from 1"),
    ({"admission": "queue", "challenge": "pow", "pow_algorithm": "MD5"}, "pow_algorithm", "PBKDF2/SHA-256"),
], ids=lambda value: str(value) if isinstance(value, str) else None)
def test_bad_admission_fields_are_refused_on_create_and_patch(api, snapshot, fields, field, words):
    drop = api.create_drop()
    before = snapshot()
    created = api.admin("POST", "/api/admin/drops", {"slug": "bad-line", "name": "Q", "price": 1, "total_stock": 1,
                                                     **fields})
    patched = api.admin("PATCH", f"/api/admin/drops/{drop['id']}", fields)
    for reply in (created, patched):
        assert (reply.status, reply.error_code) == (422, "invalid_field"), reply.body
        assert words in reply.json["error"]["message"] and field in reply.json["error"]["message"]
    assert snapshot() == before


def test_a_line_with_proof_of_work_is_made_with_the_default_terms(api):
    created = api.create_drop(admission="queue", challenge="pow")
    assert (created["challenge"], created["pow_algorithm"], created["pow_cost"]) == ("pow", "PBKDF2/SHA-256", 5000)
    cheaper = api.admin("PATCH", f"/api/admin/drops/{created['id']}", {"pow_algorithm": "SHA-256", "pow_cost": 2})
    assert (cheaper.status, cheaper.json["pow_algorithm"], cheaper.json["pow_cost"]) == (200, "SHA-256", 2)
    none = api.admin("PATCH", f"/api/admin/drops/{created['id']}", {"challenge": "none"})
    assert (none.status, none.json["pow_algorithm"], none.json["pow_cost"]) == (200, None, None)


def test_a_lines_fields_are_frozen_once_it_has_a_ticket(api, snapshot):
    drop = api.create_drop(admission="queue", starts_at=int(time.time() * 1000) + 3_600_000)
    path = f"/api/admin/drops/{drop['id']}"
    assert api.admin("PATCH", path, {"admission_margin": 3}).status == 200  # no ticket yet
    cookie = SimpleCookie(api.get("/").headers["set-cookie"])[COOKIE_NAME].value
    joined = api.post(f"/api/drops/{drop['id']}/tickets", {}, {"Cookie": f"{COOKIE_NAME}={cookie}"})
    assert joined.status == 201, joined.body

    before = snapshot()
    for change in ({"admission": "open"}, {"admission_margin": 1}, {"starts_at": drop["starts_at"] + 1},
                   {"challenge": "pow"}):
        refused = api.admin("PATCH", path, change)
        assert (refused.status, refused.error_code) == (409, "tickets_exist"), refused.body
        assert next(iter(change)) in refused.json["error"]["message"]
    assert snapshot() == before
    longer = api.admin("PATCH", path, {"admit_seconds": 300, "name": "Renamed line"})  # not what orders the line
    assert (longer.status, longer.json["admit_seconds"], longer.json["commitment"]) == (200, 300, drop["commitment"])


def test_admin_body_must_be_json(api, service):
    auth = {"Authorization": f"Bearer {service.admin_token}"}
    reply = api.request("POST", "/api/admin/drops", b"{", {**auth, "Content-Type": "application/json"})
    assert (reply.status, reply.error_code) == (400, "malformed_json")
    reply = api.request("POST", "/api/admin/drops", b"{}", {**auth, "Content-Type": "text/plain"})
    assert (reply.status, reply.error_code) == (415, "unsupported_media_type")


def test_the_token_never_reaches_the_log(api, service):
    api.create_drop()
    assert service.admin_token not in service.log()


def test_a_draw_is_made_with_its_defaults_upcoming_until_the_draw_and_its_close_frozen_by_an_entry(api, snapshot):
    now = int(time.time() * 1000)
    created = api.create_drop(total_stock=10, admission="draw", starts_at=now - 1000, entries_close_at=now + 3_600_000)
    assert {field: created[field] for field in ADMISSION_FIELDS} == {
        "admission": "draw", "admit_seconds": 3600, "admission_margin": 0, "entries_close_at": now + 3_600_000,
        "challenge": "none", "pow_algorithm": None, "pow_cost": None}
    assert created["status"] == "upcoming"  # entries are open, purchases wait for the draw
    path = f"/api/admin/drops/{created['id']}"
    later = api.admin("PATCH", path, {"entries_close_at": now + 7_200_000, "ends_at": now + 7_200_000 + 3_600_000})
    assert (later.status, later.json["entries_close_at"], later.json["status"]) == (200, now + 7_200_000, "upcoming")
    tight = api.admin("PATCH", path, {"admit_seconds": 3601})  # the window would run past ends_at
    assert (tight.status, tight.error_code) == (422, "invalid_field")
    assert "ends_at - admit_seconds" in tight.json["error"]["message"]
    as_queue = api.create_drop(admission="queue")
    switched = api.admin("PATCH", f"/api/admin/drops/{as_queue['id']}",
                         {"admission": "draw", "entries_close_at": as_queue["starts_at"] + 60_000})
    assert (switched.status, switched.json["admission_margin"]) == (200, 0), switched.body  # the queue's margin goes
    back = api.admin("PATCH", f"/api/admin/drops/{as_queue['id']}", {"admission": "queue"})
    assert (back.status, back.json["entries_close_at"]) == (200, None), back.body

    cookie = SimpleCookie(api.get("/").headers["set-cookie"])[COOKIE_NAME].value
    entered = api.post(f"/api/drops/{created['id']}/tickets", {}, {"Cookie": f"{COOKIE_NAME}={cookie}"})
    assert (entered.status, entered.json["kind"]) == (201, "entry"), entered.body
    before = snapshot()
    for change in ({"entries_close_at": now + 5_000_000}, {"admission": "queue"}):
        refused = api.admin("PATCH", path, change)
        assert (refused.status, refused.error_code) == (409, "tickets_exist"), refused.body
    assert snapshot() == before
