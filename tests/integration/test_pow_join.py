"""Proof of work to join a line over HTTP (SPEC 11, ``challenge: pow``): the challenge route, a real
solve with the altcha library's solver, and every refusal a 422 challenge_failed that changes nothing."""

from __future__ import annotations

import base64
import json
import secrets
import time

import altcha
import pytest
from test_queue_routes import Shop, code, now_ms, opened

from dropsvc.challenges import TTL_SECONDS, Challenges


class PowShop(Shop):
    """The queue routes' shop plus a line that asks for proof of work (cheap: SHA-256, cost 1)."""

    def __init__(self, tmp_path) -> None:
        super().__init__(tmp_path)
        fields = {"price": 1000, "total_stock": 2, "admission": "queue", "challenge": "pow",
                  "pow_algorithm": "SHA-256", "pow_cost": 1, "starts_at": now_ms() + 60_000}
        self.pow = self.engine.create_drop(slug="pow", name="Pow", **fields)
        self.other_pow = self.engine.create_drop(slug="pow-2", name="Pow 2", **fields)

    def challenge(self, headers: dict[str, str], drop_id: int | None = None):
        return self.client.simulate_get(f"/api/drops/{drop_id or self.pow}/challenge", headers=headers)

    def solved(self, headers: dict[str, str], drop_id: int | None = None) -> str:
        reply = self.challenge(headers, drop_id)
        assert reply.status_code == 200 and reply.headers["cache-control"] == "private, no-store"
        challenge = altcha.Challenge.from_dict(reply.json)
        return altcha.Payload(challenge, altcha.solve_challenge(challenge, timeout=30)).to_base64()

    def join_with(self, headers: dict[str, str], payload: object):
        return self.join(headers, self.pow, json.dumps({} if payload is None else {"altcha": payload}).encode())

    def tickets(self) -> int:
        return self.engine.read("SELECT COUNT(*) AS n FROM tickets WHERE drop_id = ?", (self.pow,))[0]["n"]


@pytest.fixture
def shop(tmp_path):
    yield from opened(PowShop(tmp_path))


def failed(reply) -> str:
    """The reason of a 422 challenge_failed (the message starts with it)."""
    assert code(reply) == (422, "challenge_failed"), reply.text
    return reply.json["error"]["message"].split(":")[0]


def test_a_solved_challenge_joins_and_joining_again_needs_no_new_one(shop):
    _, headers = shop.cookie()
    reply = shop.join_with(headers, shop.solved(headers))
    assert reply.status_code == 201 and reply.json["kind"] == "prequeue"
    again = shop.join_with(headers, None)
    assert again.status_code == 200 and again.json["ticket_id"] == reply.json["ticket_id"]


def test_the_challenge_route(shop):
    buyer_id, headers = shop.cookie()
    parameters = shop.challenge(headers).json["parameters"]
    assert parameters["algorithm"] == "SHA-256" and parameters["cost"] == 1
    assert parameters["data"] == {"drop": str(shop.pow), "buyer": buyer_id}
    assert code(shop.challenge({})) == (409, "buyer_required")
    assert code(shop.challenge(headers, shop.line)) == (404, "no_challenge")
    assert code(shop.challenge(headers, shop.open)) == (404, "no_queue")
    assert code(shop.challenge(headers, 999)) == (404, "drop_not_found")


def solve(challenge: dict) -> str:
    parsed = altcha.Challenge.from_dict(challenge)
    return altcha.Payload(parsed, altcha.solve_challenge(parsed, timeout=30)).to_base64()


def test_every_refusal_is_422_and_changes_nothing(shop):
    ann_id, ann = shop.cookie()
    _, bob = shop.cookie()
    anns = shop.solved(ann)
    assert failed(shop.join_with(bob, None)) == "missing"
    assert failed(shop.join_with(bob, "not base64 at all")) == "malformed"
    assert failed(shop.join_with(bob, anns)) == "other_buyer"
    assert failed(shop.join_with(bob, shop.solved(bob, shop.other_pow))) == "other_drop"
    document = json.loads(base64.b64decode(anns))
    document["solution"]["derivedKey"] = "00" * 32
    assert failed(shop.join_with(ann, base64.b64encode(json.dumps(document).encode()).decode())) == "wrong"
    elsewhere = Challenges(secrets.token_bytes(32)).issue(shop.pow, ann_id, "SHA-256", 1, counter=3)
    assert failed(shop.join_with(ann, solve(elsewhere))) == "forged"
    stale = Challenges(shop.engine.secret("challenge_key")).issue(shop.pow, ann_id, "SHA-256", 1, counter=3,
                                                                   now=time.time() - TTL_SECONDS - 1)
    assert failed(shop.join_with(ann, solve(stale))) == "expired"
    assert shop.tickets() == 0 and shop.engine.read("SELECT COUNT(*) AS n FROM spent_challenges")[0]["n"] == 0
    assert shop.join_with(ann, anns).status_code == 201  # her own, still unspent, works


def test_a_solution_works_once(shop):
    _, headers = shop.cookie()
    payload = shop.solved(headers)
    nonce = altcha.Payload.from_base64(payload).challenge.parameters.nonce
    assert shop.engine.spend_challenge(shop.pow, nonce, now_ms() + 60_000)  # a twin request spent it first
    assert failed(shop.join_with(headers, payload)) == "reused"
    assert shop.tickets() == 0


def test_a_join_the_line_refuses_by_its_times_gets_that_refusal_not_a_demand_for_proof(shop):
    _, headers = shop.cookie()
    pow_terms = {"price": 1, "total_stock": 1, "challenge": "pow", "pow_algorithm": "SHA-256", "pow_cost": 1}
    ended = shop.engine.create_drop(slug="pow-ended", name="Ended", admission="queue", starts_at=now_ms() - 10_000,
                                    ends_at=now_ms() - 1000, **pow_terms)
    later = shop.engine.create_drop(slug="pow-draw", name="Draw", admission="draw", starts_at=now_ms() + 60_000,
                                    entries_close_at=now_ms() + 120_000, **pow_terms)
    drawn = shop.engine.create_drop(slug="pow-drawn", name="Drawn", admission="draw", starts_at=now_ms() - 10_000,
                                    entries_close_at=now_ms() + 60_000, **pow_terms)
    assert shop.engine.record_close(drawn)  # the draw recorded before its entries_close_at: no more entries
    assert code(shop.join(headers, ended)) == (409, "queue_closed")
    assert code(shop.join(headers, later)) == (409, "entries_not_open")
    assert code(shop.join(headers, drawn)) == (409, "queue_closed")
    assert shop.engine.read("SELECT COUNT(*) AS n FROM tickets")[0]["n"] == 0
