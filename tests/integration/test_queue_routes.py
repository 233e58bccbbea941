"""A queue drop's routes in process (SPEC 11): tickets, a ticket's view, leaving, the queue document,
the fairness audit; every refusal a 4xx in the envelope."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from falcon import testing

from dropsvc import Engine
from dropsvc.buyers import COOKIE_NAME, USER_ID_PREFIX, Buyers
from dropsvc.config import Config
from dropsvc.http.app import create_app
from dropsvc.http.resources import queue as queue_resource
from dropsvc.tickets import TicketTokens

TICKET_FIELDS = {"ticket_id", "token", "kind", "joined_at", "state", "position", "ahead", "admitted_until", "eta_s"}
DOCUMENT_FIELDS = {"state", "admitted_through", "waiting", "remaining", "held", "paused", "commitment", "seed",
                   "poll_after_ms"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Shop:
    """An app over one engine with a started queue drop (not closed yet) and an open drop."""

    def __init__(self, tmp_path) -> None:
        self.engine = Engine(tmp_path / "queue.db", readers=1)
        self.client = testing.TestClient(create_app(self.engine, Config.load({})))
        live = {"price": 1000, "total_stock": 2, "per_user_limit": 1, "starts_at": now_ms() - 1000}
        self.line = self.engine.create_drop(slug="line", name="Line", admission="queue", admit_seconds=60, **live)
        self.open = self.engine.create_drop(slug="open", name="Open", **live)
        self.buyers = Buyers(self.engine.secret("buyer_cookie_key"))
        self.tokens = TicketTokens(self.engine.secret("ticket_token_key"))

    def cookie(self) -> tuple[str, dict[str, str]]:
        """A new buyer: (id, headers carrying its cookie)."""
        buyer_id, value = self.buyers.new_cookie()
        return buyer_id, {"Cookie": f"{COOKIE_NAME}={value}"}

    def join(self, headers: dict[str, str], drop_id: int | None = None, body: bytes = b"{}") -> testing.Result:
        return self.client.simulate_post(f"/api/drops/{drop_id or self.line}/tickets", body=body,
                                         headers={"Content-Type": "application/json", **headers})

    def view(self, headers: dict[str, str], ticket_id: object, drop_id: int | None = None) -> testing.Result:
        return self.client.simulate_get(f"/api/drops/{drop_id or self.line}/tickets/{ticket_id}", headers=headers)

    def leave(self, headers: dict[str, str], ticket_id: object) -> testing.Result:
        return self.client.simulate_delete(f"/api/drops/{self.line}/tickets/{ticket_id}", headers=headers)

    def get(self, path: str, **headers: str) -> testing.Result:
        return self.client.simulate_get(path, headers=headers)


def opened(made: Shop) -> Iterator[Shop]:
    """A shop for a fixture: yielded, then its invariant checked and its engine closed."""
    yield made
    assert made.engine.check() == []
    made.engine.close()


@pytest.fixture
def shop(tmp_path):
    yield from opened(Shop(tmp_path))


def code(reply: testing.Result) -> tuple[int, str]:
    return reply.status_code, reply.json["error"]["code"]


def test_a_buyer_joins_once_and_sees_the_same_ticket(shop):
    buyer_id, headers = shop.cookie()
    first = shop.join(headers)
    assert first.status_code == 201 and set(first.json) == TICKET_FIELDS
    ticket = first.json
    assert first.headers["location"] == f"/api/drops/{shop.line}/tickets/{ticket['ticket_id']}"
    assert ticket["ticket_id"] == "1" and ticket["kind"] == "prequeue" and ticket["state"] == "waiting"
    assert ticket["position"] is None and ticket["ahead"] is None and ticket["eta_s"] is None
    assert ticket["token"] == shop.tokens.sign(shop.line, 1, buyer_id)
    assert buyer_id not in first.text
    again = shop.join(headers, body=b'{"altcha": "not checked yet"}')
    assert again.status_code == 200 and again.json == ticket and "location" not in again.headers
    _, other = shop.cookie()
    assert shop.join(other).json["ticket_id"] == "2"


def test_a_join_is_refused_in_the_envelope(shop):
    _, headers = shop.cookie()
    assert code(shop.join({})) == (409, "buyer_required")
    assert code(shop.join({"Cookie": f"{COOKIE_NAME}={'a' * 32}.{'0' * 64}"})) == (409, "buyer_required")
    assert code(shop.join({}, body=b'{"user_id": "ann"}')) == (422, "invalid_field")
    assert code(shop.join(headers, body=b'{"user_id": "ann"}')) == (422, "invalid_field")
    assert code(shop.join(headers, body=b'{"altcha": 5}')) == (422, "invalid_field")
    assert code(shop.join(headers, body=b"[]")) == (422, "invalid_field")
    assert code(shop.join(headers, body=b"{")) == (400, "malformed_json")
    assert code(shop.join(headers, drop_id=shop.open)) == (404, "no_queue")
    assert code(shop.join(headers, drop_id=999)) == (404, "drop_not_found")
    assert code(shop.client.simulate_post("/api/drops/x1/tickets", body=b"{}", headers={
        "Content-Type": "application/json", **headers})) == (404, "drop_not_found")
    ended = shop.engine.create_drop(slug="ended", name="Ended", price=1, total_stock=1, admission="queue",
                                    starts_at=now_ms() - 10_000, ends_at=now_ms() - 1000)
    assert code(shop.join(headers, drop_id=ended)) == (409, "queue_closed")
    assert shop.engine.buyer_ticket(shop.line, "ann") is None


def test_a_join_the_storage_refuses_is_503_and_the_next_one_joins(shop):
    """A full database (SQLite's max_page_count, as a full disk) during joins: 503 storage_unavailable
    with Retry-After, never 500; with room again the next join gets the next ticket."""
    pages = shop.engine.read("PRAGMA page_count")[0]["page_count"]
    shop.engine.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages}"))  # no room to grow
    statuses = []
    for _ in range(2000):  # tickets fill the last free pages, then the storage refuses
        reply = shop.join(shop.cookie()[1])
        statuses.append(reply.status_code)
        if reply.status_code == 503:
            assert code(reply) == (503, "storage_unavailable") and reply.headers["retry-after"] == "1"
            break
    assert statuses[-1] == 503 and set(statuses) <= {201, 503}, statuses
    shop.engine.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))  # room again
    reply = shop.join(shop.cookie()[1])
    assert reply.status_code == 201 and reply.json["ticket_id"] == str(len(statuses))


def test_the_view_answers_only_the_tickets_buyer_and_checks_in(shop):
    buyer_id, headers = shop.cookie()
    ticket_id = shop.join(headers).json["ticket_id"]
    assert shop.engine.ticket_of(shop.line, 1)["checked_in_at"] is None
    reply = shop.view(headers, ticket_id)
    assert reply.status_code == 200 and reply.headers["cache-control"] == "private, no-store"
    assert set(reply.json) == TICKET_FIELDS and reply.json["token"] == shop.tokens.sign(shop.line, 1, buyer_id)
    checked_in = shop.engine.ticket_of(shop.line, 1)["checked_in_at"]
    assert checked_in is not None
    assert shop.view(headers, ticket_id).json == reply.json
    assert shop.engine.ticket_of(shop.line, 1)["checked_in_at"] == checked_in  # written once
    # a view that changes nothing answers from the check-in's own read: the ticket's row as it is
    assert shop.engine.check_in(shop.line, 1, USER_ID_PREFIX + buyer_id) == shop.engine.ticket_of(shop.line, 1)
    _, stranger = shop.cookie()
    for who, ticket, drop_id in ((stranger, ticket_id, None), (headers, "2", None), (headers, "0", None),
                                 (headers, "x", None), (headers, "9" * 30, None), (headers, ticket_id, shop.open),
                                 (headers, ticket_id, 999)):
        assert code(shop.view(who, ticket, drop_id)) == (404, "ticket_not_found")
    assert code(shop.view({}, ticket_id)) == (409, "buyer_required")


def test_leaving_the_line(shop):
    _, headers = shop.cookie()
    ticket_id = shop.join(headers).json["ticket_id"]
    _, stranger = shop.cookie()
    assert code(shop.leave(stranger, ticket_id)) == (404, "ticket_not_found")
    assert code(shop.leave(headers, "7")) == (404, "ticket_not_found")
    assert code(shop.leave(headers, "-1")) == (404, "ticket_not_found")
    assert code(shop.leave({}, ticket_id)) == (409, "buyer_required")
    left = shop.leave(headers, ticket_id)
    assert left.status_code == 200 and left.json["state"] == "left" and left.json["ticket_id"] == ticket_id
    assert code(shop.leave(headers, ticket_id)) == (409, "already_left")
    _, other = shop.cookie()
    other_id = shop.join(other).json["ticket_id"]
    shop.engine.write(lambda tx: tx.execute("UPDATE tickets SET state = 'lapsed' WHERE ticket_id = ?",
                                            (int(other_id),)))
    refused = shop.leave(other, other_id)
    assert code(refused) == (409, "ticket_final") and "lapsed" in refused.json["error"]["message"]


def test_the_queue_document_is_public_cached_and_revalidated(shop, monkeypatch):
    path = f"/api/drops/{shop.line}/queue"
    reply = shop.get(path)
    assert reply.status_code == 200 and set(reply.json) == DOCUMENT_FIELDS
    assert reply.headers["cache-control"] == "public, max-age=1"
    assert reply.json["state"] == "entries_open" and reply.json["seed"] is None
    assert reply.json["commitment"] == shop.engine.fairness(shop.line)["commitment"]
    etag = reply.headers["etag"]
    not_modified = shop.get(path, **{"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == etag
    assert shop.get(path, **{"If-None-Match": '"other"'}).status_code == 200
    _, headers = shop.cookie()
    shop.join(headers)
    assert shop.get(path).json["waiting"] == 0  # the rendered document is kept a moment...
    monkeypatch.setattr(queue_resource, "CACHE_SECONDS", 0.0)
    time.sleep(queue_resource.CACHE_SECONDS + 0.5)
    fresh = shop.get(path)
    assert fresh.json["waiting"] == 1 and fresh.headers["etag"] != etag  # ...then rendered again
    assert code(shop.get(f"/api/drops/{shop.open}/queue")) == (404, "no_queue")
    assert code(shop.get("/api/drops/999/queue")) == (404, "drop_not_found")
    assert code(shop.get("/api/drops/abc/queue")) == (404, "drop_not_found")


def test_the_seed_is_unreadable_before_the_close_and_the_commitment_kept(shop):
    commitment = shop.engine.fairness(shop.line)["commitment"]
    _, headers = shop.cookie()
    shop.join(headers)
    seed = shop.engine.read("SELECT seed FROM drop_seeds WHERE drop_id = ?", (shop.line,))[0]["seed"].hex()
    reads = [f"/api/drops/{shop.line}", "/api/drops", f"/api/drops/{shop.line}/queue",
             f"/api/drops/{shop.line}/fairness", f"/api/drops/{shop.line}/fairness/tickets",
             f"/api/drops/{shop.line}/tickets/1"]
    for path in reads:
        assert seed not in shop.get(path, Cookie=headers["Cookie"]).text
    assert shop.get(f"/api/drops/{shop.line}/fairness").json == {"commitment": commitment, "seed": None}
    assert code(shop.get(f"/api/drops/{shop.line}/fairness/tickets")) == (409, "not_revealed")
    shop.engine.admit_drop(shop.line)
    assert shop.get(f"/api/drops/{shop.line}/fairness").json == {"commitment": commitment, "seed": seed}
    assert shop.get(f"/api/drops/{shop.line}/queue").json["commitment"] == commitment
    assert "seed" not in shop.get(f"/api/drops/{shop.line}").json


def test_fairness_routes_refuse_open_and_unknown_drops(shop):
    for suffix in ("fairness", "fairness/tickets"):
        assert code(shop.get(f"/api/drops/{shop.open}/{suffix}")) == (404, "no_queue")
        assert code(shop.get(f"/api/drops/12345/{suffix}")) == (404, "drop_not_found")
        assert code(shop.get(f"/api/drops/0/{suffix}")) == (404, "drop_not_found")


def test_join_close_admit_buy_with_the_views_token(shop):
    ann_id, ann = shop.cookie()
    bob_id, bob = shop.cookie()
    cid, cid_headers = shop.cookie()
    for headers in (ann, bob, cid_headers):
        ticket_id = shop.join(headers).json["ticket_id"]
        shop.view(headers, ticket_id)  # check in
    shop.engine.admit_drop(shop.line)  # the close and the first wave: 2 units + margin 1 -> 3 tickets
    views = {name: shop.view(headers, ticket).json
             for name, headers, ticket in (("ann", ann, 1), ("bob", bob, 2), ("cid", cid_headers, 3))}
    assert {view["state"] for view in views.values()} == {"admitted"}
    assert sorted(view["position"] for view in views.values()) == [1, 2, 3]
    assert all(view["ahead"] == 0 and 0 < view["eta_s"] <= 60 for view in views.values())
    token = views["ann"]["token"]
    document = shop.get(f"/api/drops/{shop.line}/queue").json
    assert document["seed"] is not None and document["state"] == "admitting"
    buy = shop.client.simulate_post(f"/api/drops/{shop.line}/purchases", body=b'{"quantity": 1}', headers={
        "Content-Type": "application/json", "Admission-Ticket": token, **ann})
    assert buy.status_code == 201 and buy.json["user_id"] == USER_ID_PREFIX + ann_id
    assert shop.view(ann, 1).json["state"] == "used"
    assert code(shop.leave(ann, 1)) == (409, "ticket_final")
    bob_token_for_ann = shop.client.simulate_post(
        f"/api/drops/{shop.line}/purchases", body=b"{}",
        headers={"Content-Type": "application/json", "Admission-Ticket": views["bob"]["token"], **ann})
    assert bob_token_for_ann.json["error"]["ticket_state"] == "other_buyer"
    export = shop.get(f"/api/drops/{shop.line}/fairness/tickets")
    assert export.status_code == 200 and export.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [line["ticket_id"] for line in lines] == ["1", "2", "3"]
    assert lines[0]["outcome"] == "bought" and all(line["admitted_at"] for line in lines)
    for buyer in (ann_id, bob_id, cid):
        assert buyer not in export.text


def test_a_waiting_tickets_ahead_and_estimate(shop):
    headers = [shop.cookie()[1] for _ in range(6)]
    for each in headers:
        shop.join(each)
    shop.engine.admit_drop(shop.line)  # the close; nobody checked in: the first wave skips them all (absent)
    late = shop.cookie()[1]
    shop.join(late)  # fifo, after the line
    assert shop.engine.ticket_of(shop.line, 7)["state"] == "waiting"
    view = shop.view(late, 7).json
    assert view["kind"] == "fifo" and view["position"] == 7 and view["ahead"] == 0 and view["eta_s"] == 0
    back = shop.view(headers[0], 1).json  # an absent ticket checks in: back at the end of the line
    assert back["state"] == "waiting" and back["position"] == 8 and back["ahead"] == 1
