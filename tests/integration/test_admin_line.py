"""The merchant's hand on a line over HTTP (SPEC 11, admin): the figures, pause and resume, extend,
void; behind the admin token; every refusal a 4xx in the envelope that changes nothing."""

from __future__ import annotations

import json

import pytest
from falcon import testing
from test_queue_routes import Shop, code, now_ms, opened

from dropsvc.config import Config
from dropsvc.http.app import create_app

TOKEN = "line-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Merchant(Shop):
    """The queue routes' shop with an admin token; a line of three tickets, closed, checked in."""

    def __init__(self, tmp_path) -> None:
        super().__init__(tmp_path)
        self.engine.update_drop(self.line, admission_margin=0)  # the first wave: the 2 units, no more
        self.admin = testing.TestClient(create_app(self.engine, Config.load({"DROPSVC_ADMIN_TOKEN": TOKEN})))
        self.holders = []
        for _ in range(3):
            _, headers = self.cookie()
            ticket_id = self.join(headers).json["ticket_id"]
            self.holders.append((headers, ticket_id))
        for headers, ticket_id in self.holders:
            assert self.view(headers, ticket_id).json["state"] == "waiting"  # the check-in
        self.engine.admit_drop(self.line)  # the close (the drop started a second ago) and the first wave

    def post(self, path: str, body: object = None, headers: dict[str, str] | None = None) -> testing.Result:
        return self.admin.simulate_post(f"/api/admin/drops/{path}", headers=ADMIN if headers is None else headers,
                                        body=b"" if body is None else json.dumps(body).encode())

    def tickets(self) -> list[dict]:
        """The line's tickets in position order (the draw decides which ticket id is first)."""
        return self.engine.read("SELECT ticket_id, state, admitted_until FROM tickets WHERE drop_id = ?"
                                " ORDER BY position", (self.line,))


@pytest.fixture
def merchant(tmp_path):
    yield from opened(Merchant(tmp_path))


def test_every_line_route_needs_the_token(merchant):
    line = merchant.line
    for path in (f"{line}/line/pause", f"{line}/line/resume", f"{line}/line/extend", f"{line}/tickets/1/void"):
        assert code(merchant.post(path, {"seconds": 5}, {"Content-Type": "application/json"})) == (401, "unauthorized")
    assert code(merchant.admin.simulate_get(f"/api/admin/drops/{line}/line")) == (401, "unauthorized")
    assert merchant.engine.line_report(line)["paused"] is False and merchant.engine.admissions_of(line) != []


def test_the_figures_pause_and_resume(merchant):
    line = merchant.line
    report = merchant.admin.simulate_get(f"/api/admin/drops/{line}/line", headers=ADMIN)
    assert report.status_code == 200 and report.json["joined"] == 3 and report.json["checked_in"] == 3
    assert report.json["paused"] is False and report.json["by_state"]["admitted"] == 2  # total_stock 2
    paused = merchant.post(f"{line}/line/pause")
    assert paused.status_code == 200 and paused.json["paused"] is True and paused.json["paused_at"] is not None
    assert merchant.post(f"{line}/line/pause").json["paused_at"] == paused.json["paused_at"]
    merchant.engine.void_ticket(line, merchant.tickets()[0]["ticket_id"])  # a unit back while paused: no admission
    merchant.engine.admit_drop(line)
    assert [row["state"] for row in merchant.tickets()] == ["voided", "admitted", "waiting"]
    assert merchant.get(f"/api/drops/{line}/queue").json["paused"] is True
    resumed = merchant.post(f"{line}/line/resume")
    assert resumed.status_code == 200 and resumed.json["paused"] is False
    merchant.engine.admit_drop(line)
    assert [row["state"] for row in merchant.tickets()] == ["voided", "admitted", "admitted"]


def test_extend(merchant):
    line = merchant.line
    before = merchant.tickets()
    first, third = (str(row["ticket_id"]) for row in (before[0], before[2]))
    for body in (None, {}, {"seconds": 0}, {"seconds": "5"}, {"seconds": 86_401}, {"seconds": True},
                 {"seconds": 5, "ticket_id": "x"}, {"seconds": 5, "ticket_id": 0}, {"seconds": 5, "who": 1},
                 {"seconds": 5, "ticket_id": [1]}):
        reply = merchant.post(f"{line}/line/extend", body)
        assert reply.status_code in (400, 415, 422), (body, reply.status_code)
    assert code(merchant.post(f"{line}/line/extend", {"seconds": 5, "ticket_id": third})) == (409, "not_admitted")
    assert code(merchant.post(f"{line}/line/extend", {"seconds": 5, "ticket_id": 9})) == (404, "ticket_not_found")
    assert merchant.tickets() == before
    extended = merchant.post(f"{line}/line/extend", {"seconds": 30})
    assert extended.status_code == 200 and extended.json["extended"] == 2
    assert [row["admitted_until"] for row in merchant.tickets()[:2]] == [row["admitted_until"] + 30_000
                                                                         for row in before[:2]]
    one = merchant.post(f"{line}/line/extend", {"seconds": 10, "ticket_id": first})
    assert one.json["extended"] == 1 and merchant.tickets()[0]["admitted_until"] == before[0]["admitted_until"] + 40_000


def test_a_voided_ticket_cannot_buy_and_shows_in_the_export(merchant):
    line = merchant.line
    headers, ticket_id = merchant.holders[0]
    token = merchant.view(headers, ticket_id).json["token"]
    for path, expected in ((f"{line}/tickets/9/void", (404, "ticket_not_found")),
                           (f"{line}/tickets/x/void", (404, "ticket_not_found")),
                           (f"{merchant.open}/tickets/1/void", (404, "no_queue")),
                           ("999/tickets/1/void", (404, "drop_not_found"))):
        assert code(merchant.post(path)) == expected
    voided = merchant.post(f"{line}/tickets/{ticket_id}/void")
    assert voided.status_code == 200 and voided.json["state"] == "voided" and voided.json["ticket_id"] == ticket_id
    assert code(merchant.post(f"{line}/tickets/{ticket_id}/void")) == (409, "ticket_final")
    bought = merchant.client.simulate_post(f"/api/drops/{line}/purchases", body=b'{"quantity": 1}', headers={
        "Content-Type": "application/json", "Admission-Ticket": token, **headers})
    assert code(bought) == (409, "not_admitted") and bought.json["error"]["ticket_state"] == "voided"
    assert merchant.view(headers, ticket_id).json["state"] == "voided"
    export = merchant.get(f"/api/drops/{line}/fairness/tickets").text.splitlines()
    assert json.loads(export[0])["outcome"] == "voided"


def test_open_and_unknown_drops_have_no_line(merchant):
    for drop_id, expected in ((merchant.open, (404, "no_queue")), (999, (404, "drop_not_found"))):
        assert code(merchant.admin.simulate_get(f"/api/admin/drops/{drop_id}/line", headers=ADMIN)) == expected
        assert code(merchant.post(f"{drop_id}/line/pause")) == expected
        assert code(merchant.post(f"{drop_id}/line/extend", {"seconds": 5})) == expected
    ended = merchant.engine.create_drop(slug="ended", name="Ended", price=1, total_stock=1, admission="queue",
                                        starts_at=now_ms() - 10_000, ends_at=now_ms() - 1000)
    merchant.engine.admit_drop(ended)
    assert code(merchant.post(f"{ended}/line/pause")) == (409, "line_ended")
