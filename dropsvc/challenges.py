"""Proof of work to join a line (SPEC 11, ``challenge: pow``): ALTCHA PoW v2 challenges, each bound
to one buyer and one drop, expiring, and good for one join.

Deterministic effort (ALTCHA's recommended mode): the service picks the counter the solver must
reach, uniformly in ``COUNTER_RANGE``, and the challenge's key prefix is the derived key of that
counter; a solver tries counters 0, 1, 2, ... so every identity costs about the same work, some
``COUNTER_RANGE`` mean x one key derivation of the drop's ``pow_cost`` (iterations of the
drop's ``pow_algorithm``). Making a challenge costs the service one derivation; checking a
solution one HMAC (the derived key's ``keySignature``), never a derivation.

The challenge's ``data`` (the drop's id and the buyer's) and ``expiresAt`` are signed with the
rest of it, so a solution is refused for another buyer, another drop, or late. That a solution
works once is the ledger's: the join spends the challenge's nonce (``Engine.spend_challenge``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, NamedTuple

import altcha

ALGORITHMS = ("SHA-256", "SHA-384", "SHA-512", "PBKDF2/SHA-256", "PBKDF2/SHA-384", "PBKDF2/SHA-512")
DEFAULT_ALGORITHM = "PBKDF2/SHA-256"
DEFAULT_COST = 5_000  # PBKDF2 iterations a try: see the README's "what a cost buys"
MAX_COST = 10_000_000
COUNTER_RANGE = (500, 1_500)  # the counter a solver must reach: ~1,000 derivations on average
TTL_SECONDS = 600  # a challenge expires 10 minutes after it was given
MAX_PAYLOAD = 4096  # characters of a widget's base64 payload


class ChallengeFailed(Exception):
    """A join's proof of work refused; ``reason``: missing, malformed, forged, expired, other_buyer,
    other_drop or wrong (the solution does not solve the challenge)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Solved(NamedTuple):
    """A checked solution: the challenge's nonce (spent by the join) and when the challenge expires (ms)."""

    nonce: str
    expires_at: int


def _subkey(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()


class Challenges:
    """Makes and checks challenges with one key: ``Challenges(engine.secret("challenge_key"))``."""

    def __init__(self, key: bytes) -> None:
        # one key for the challenge's signature, another for the derived key's
        self._signing = _subkey(key, b"altcha challenge")
        self._key_signing = _subkey(key, b"altcha derived key")

    def issue(self, drop_id: int, buyer_id: str, algorithm: str, cost: int, now: float | None = None,
              counter: int | None = None) -> dict[str, Any]:
        """A new challenge for this buyer and drop, as the widget takes it (``parameters``, ``signature``)."""
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        low, high = COUNTER_RANGE
        challenge = altcha.create_challenge(
            algorithm, cost,
            counter=low + secrets.randbelow(high - low) if counter is None else counter,
            expires_at=int(time.time() if now is None else now) + TTL_SECONDS,
            data={"drop": str(drop_id), "buyer": buyer_id},
            hmac_secret=self._signing, hmac_key_secret=self._key_signing)
        return challenge.to_dict()

    def check(self, payload: Any, drop_id: int, buyer_id: str) -> Solved:
        """The solution the join carries (the widget's base64 payload), checked; else ChallengeFailed."""
        if payload is None:
            raise ChallengeFailed("missing", "this line needs a solved challenge (altcha) to join")
        if not isinstance(payload, str) or not 0 < len(payload) <= MAX_PAYLOAD:
            raise ChallengeFailed("malformed", "altcha must be the widget's payload")
        try:
            parsed = altcha.Payload.from_base64(payload)
            parameters = parsed.challenge.parameters
            data, nonce = parameters.data, parameters.nonce
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise ChallengeFailed("malformed", "altcha must be the widget's payload") from None
        result = altcha.verify_solution(parsed, self._signing, hmac_key_secret=self._key_signing)
        if result.expired:
            raise ChallengeFailed("expired", "the challenge has expired: solve a new one")
        if result.invalid_signature is not False or not parameters.key_signature:
            raise ChallengeFailed("forged", "the challenge was not given by this service")
        if not isinstance(data, dict) or data.get("drop") != str(drop_id):
            raise ChallengeFailed("other_drop", "the challenge was given for another drop")
        if data.get("buyer") != buyer_id:
            raise ChallengeFailed("other_buyer", "the challenge was given to another buyer")
        if not result.verified:
            raise ChallengeFailed("wrong", "the solution does not solve the challenge")
        if not isinstance(parameters.expires_at, int) or not isinstance(nonce, str):
            raise ChallengeFailed("forged", "the challenge was not given by this service")
        return Solved(nonce, parameters.expires_at * 1000)
