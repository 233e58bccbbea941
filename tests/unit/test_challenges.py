"""Proof of work to join (SPEC 11, ``challenge: pow``): ALTCHA PoW v2 challenges made by the service,
solved by the altcha library's own solver, checked; every refusal names its reason."""

from __future__ import annotations

import base64
import json
import secrets
import time

import altcha
import pytest

from dropsvc.challenges import ALGORITHMS, COUNTER_RANGE, TTL_SECONDS, ChallengeFailed, Challenges

KEY = secrets.token_bytes(32)
DROP, BUYER = 7, "a" * 32


def solve(challenge: dict) -> str:
    """The widget's payload: the challenge and the library solver's solution, base64 JSON."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=30)
    assert solution is not None
    return altcha.Payload(parsed, solution).to_base64()


def reason(payload: object, challenges: Challenges | None = None, drop: int = DROP, buyer: str = BUYER) -> str:
    with pytest.raises(ChallengeFailed) as failed:
        (challenges or Challenges(KEY)).check(payload, drop, buyer)
    return failed.value.reason


def edit(payload: str, change) -> str:
    """The payload with its JSON changed by ``change`` (in place)."""
    document = json.loads(base64.b64decode(payload))
    change(document)
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize("algorithm", ["SHA-256", "PBKDF2/SHA-256"])
def test_a_real_solve_is_accepted(algorithm):
    challenges = Challenges(KEY)
    before = int(time.time())
    challenge = challenges.issue(DROP, BUYER, algorithm, cost=2, counter=40)
    parameters = challenge["parameters"]
    assert parameters["algorithm"] == algorithm and parameters["cost"] == 2
    assert parameters["data"] == {"drop": str(DROP), "buyer": BUYER} and parameters["keySignature"]
    assert before + TTL_SECONDS <= parameters["expiresAt"] <= int(time.time()) + TTL_SECONDS
    solved = challenges.check(solve(challenge), DROP, BUYER)
    assert solved.nonce == parameters["nonce"] and solved.expires_at == parameters["expiresAt"] * 1000


def test_the_counter_to_reach_is_drawn_from_the_range():
    challenge = Challenges(KEY).issue(DROP, BUYER, "SHA-256", cost=1)
    counter = altcha.solve_challenge(altcha.Challenge.from_dict(challenge), timeout=30).counter
    assert COUNTER_RANGE[0] <= counter < COUNTER_RANGE[1]


def test_refusals_name_their_reason():
    challenges = Challenges(KEY)
    payload = solve(challenges.issue(DROP, BUYER, "SHA-256", cost=1, counter=5))
    assert reason(None) == "missing"
    for malformed in ("", "x" * 5000, "!!!", base64.b64encode(b"[1]").decode(), base64.b64encode(b"{}").decode(), 5):
        assert reason(malformed) == "malformed", malformed
    assert reason(payload, buyer="b" * 32) == "other_buyer"
    assert reason(payload, drop=DROP + 1) == "other_drop"
    assert reason(payload, Challenges(secrets.token_bytes(32))) == "forged"  # another service's key

    def other_buyer_in_data(document):
        document["challenge"]["parameters"]["data"]["buyer"] = "b" * 32
    assert reason(edit(payload, other_buyer_in_data), buyer="b" * 32) == "forged"  # rebinding breaks the signature

    def unsigned(document):
        del document["challenge"]["signature"]
    assert reason(edit(payload, unsigned)) == "forged"

    def wrong_key(document):
        document["solution"]["derivedKey"] = "00" * 32
    assert reason(edit(payload, wrong_key)) == "wrong"
    assert challenges.check(payload, DROP, BUYER).nonce  # the genuine one still passes (spending is the ledger's)


def test_an_expired_challenge_is_refused():
    challenges = Challenges(KEY)
    payload = solve(challenges.issue(DROP, BUYER, "SHA-256", cost=1, counter=3, now=time.time() - TTL_SECONDS - 1))
    assert reason(payload) == "expired"


def test_only_known_algorithms():
    assert "PBKDF2/SHA-256" in ALGORITHMS
    with pytest.raises(ValueError):
        Challenges(KEY).issue(DROP, BUYER, "MD5", cost=1)
