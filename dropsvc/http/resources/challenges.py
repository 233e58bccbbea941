"""Proof of work to join a line (SPEC 11, ``challenge: pow``).

``GET /api/drops/{drop_id}/challenge`` gives the cookie buyer an ALTCHA PoW v2 challenge for
this drop (``Cache-Control: private, no-store``): 404 ``no_challenge`` when the drop's line asks
for none, ``no_queue`` for an open drop. The join (``tickets.Tickets``) then carries the
widget's payload as ``altcha``; ``Proofs.prove`` checks it before a new ticket is made: missing,
malformed, forged, expired, another buyer's or drop's, wrong or already used: 422
``challenge_failed`` (the message says which), and nothing changes. A buyer who already holds
a ticket joins again (200, the same ticket) without a new proof, and a join the line refuses by
its times (a draw's entries not open or closed, a queue ended) gets that refusal, not a demand
for a proof.
"""

from __future__ import annotations

from typing import Any

import falcon

from dropsvc.buyers import USER_ID_PREFIX
from dropsvc.challenges import ChallengeFailed, Challenges
from dropsvc.drops import now_ms
from dropsvc.http.errors import ApiError, not_found
from dropsvc.http.resources.common import send_json
from dropsvc.http.resources.drops import drop_not_found, drop_number
from dropsvc.http.resources.tickets import PRIVATE, TicketViews, no_queue
from dropsvc.ledger import Engine
from dropsvc.ledger.challenges import takes_joins


def challenge_failed(reason: str, message: str) -> ApiError:
    return ApiError(422, "challenge_failed", f"{reason}: {message}")


class Proofs:
    """Gives challenges and checks the joins' solutions, for one engine (its ``challenge_key``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.challenges = Challenges(engine.secret("challenge_key"))

    def terms(self, drop_id: int, text_id: str) -> dict[str, Any]:
        """The drop's proof-of-work terms, or 404 (no drop, an open drop)."""
        terms = self.engine.challenge_terms(drop_id)
        if terms is None:
            raise drop_not_found(text_id)
        if terms["admission"] == "open":
            raise no_queue(drop_id)
        return terms

    def prove(self, drop_id: int, buyer_id: str, payload: Any) -> None:
        """A join's proof of work, checked and spent; nothing to do for a line without one, or for a
        buyer already holding a ticket (joining again makes no new identity)."""
        terms = self.engine.challenge_terms(drop_id)
        if terms is None or terms["challenge"] != "pow" or not takes_joins(terms, now_ms()):
            return  # no proof asked: no line, none needed, or a join the line refuses anyway (closed, not open)
        if self.engine.buyer_ticket(drop_id, USER_ID_PREFIX + buyer_id) is not None:
            return
        try:
            solved = self.challenges.check(payload, drop_id, buyer_id)
        except ChallengeFailed as failed:
            raise challenge_failed(failed.reason, str(failed)) from None
        if not self.engine.spend_challenge(drop_id, solved.nonce, solved.expires_at):
            raise challenge_failed("reused", "this solution was already used: solve a new challenge")


class ChallengeResource:
    """GET /api/drops/{drop_id}/challenge: a new challenge for the cookie buyer."""

    def __init__(self, views: TicketViews, proofs: Proofs) -> None:
        self.views = views
        self.proofs = proofs

    def on_get(self, req: falcon.Request, resp: falcon.Response, drop_id: str) -> None:
        resp.cache_control = [PRIVATE]
        number = drop_number(drop_id)
        buyer_id = self.views.buyer(req)
        terms = self.proofs.terms(number, drop_id)
        if terms["challenge"] != "pow":
            raise not_found("no_challenge", f"drop {number}'s line asks for no proof of work")
        send_json(resp, self.proofs.challenges.issue(number, buyer_id, terms["pow_algorithm"], terms["pow_cost"]))
