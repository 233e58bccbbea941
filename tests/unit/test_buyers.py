"""The buyer cookie: signed ids, forged and malformed values refused (dropsvc/buyers.py)."""

from __future__ import annotations

import falcon
import pytest
from falcon import testing

from dropsvc.buyers import COOKIE_LENGTH, COOKIE_NAME, HEADER_CACHE_LENGTH, USER_ID_PREFIX, Buyers

KEY = bytes(range(32))


def test_a_signed_id_verifies_and_is_random():
    buyers = Buyers(KEY)
    first_id, first = buyers.new_cookie()
    second_id, second = buyers.new_cookie()
    assert first_id != second_id and len(first_id) == 32 and set(first_id) <= set("0123456789abcdef")
    assert len(first) == COOKIE_LENGTH and first.startswith(first_id + ".")
    assert buyers.verify(first) == first_id and buyers.verify(second) == second_id


@pytest.mark.parametrize("forge", [
    lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"),  # one MAC digit changed
    lambda v: ("f" if v[0] != "f" else "e") + v[1:],  # the id changed, the MAC kept
    lambda v: v[:32] + "." + "0" * 64,
    lambda v: v[:32],  # no MAC
    lambda v: v + "0",  # too long
    lambda v: v.replace(".", ":"),
    lambda v: v[:-1] + "é",  # not ASCII
    lambda v: "",
])
def test_forged_or_malformed_values_are_refused(forge):
    buyers = Buyers(KEY)
    _, value = buyers.new_cookie()
    assert buyers.verify(forge(value)) is None


def test_another_key_refuses_the_cookie():
    _, value = Buyers(KEY).new_cookie()
    assert Buyers(bytes(32)).verify(value) is None


def test_a_short_key_is_refused():
    with pytest.raises(ValueError):
        Buyers(b"short")


def _request(cookie: str | None) -> falcon.Request:
    headers = {} if cookie is None else {"Cookie": cookie}
    return testing.create_req(path="/", headers=headers)


def test_the_request_buyer_is_the_first_valid_cookie():
    buyers = Buyers(KEY)
    buyer_id, value = buyers.new_cookie()
    assert buyers.buyer_of(_request(None)) is None
    assert buyers.buyer_of(_request("other=1")) is None
    assert buyers.buyer_of(_request(f"{COOKIE_NAME}=nope; other=1")) is None
    assert buyers.buyer_of(_request(f"other=1; {COOKIE_NAME}={value}")) == buyer_id
    assert buyers.buyer_of(_request(f"{COOKIE_NAME}=forged; {COOKIE_NAME}={value}")) == buyer_id
    assert buyers.user_id_in(f"{COOKIE_NAME}={value}") == USER_ID_PREFIX + buyer_id
    assert buyers.buyer_in(f"  {COOKIE_NAME} = {value} ;other=2") == buyer_id  # spaces around = and ;
    assert buyers.buyer_in(f"x{COOKIE_NAME}={value}") is None  # another cookie whose name ends alike
    assert buyers.buyer_in(f"other={COOKIE_NAME}") is None
    assert buyers.buyer_in(None) is None


def test_a_short_header_found_good_is_kept_and_answers_alike(monkeypatch):
    """A Cookie header that carried a valid cookie answers from the per-process cache (no parse, no MAC);
    a long header, or one without a valid cookie, is not kept; the cache is dropped when full."""
    buyers = Buyers(KEY)
    buyer_id, value = buyers.new_cookie()
    header = f"other=1; {COOKIE_NAME}={value}"
    assert buyers.buyer_in(header) == buyer_id and buyers._headers == {header: buyer_id}
    monkeypatch.setattr(buyers, "verify", lambda value: pytest.fail("parsed again"))
    assert buyers.buyer_in(header) == buyer_id
    monkeypatch.undo()
    long_header = header + "; x=" + "y" * HEADER_CACHE_LENGTH
    assert buyers.buyer_in(long_header) == buyer_id and long_header not in buyers._headers
    assert buyers.buyer_in(f"{COOKIE_NAME}={buyer_id}.{'0' * 64}") is None and len(buyers._headers) == 1
    monkeypatch.setattr("dropsvc.buyers.VERIFIED_CACHE", 1)
    other_id, other = buyers.new_cookie()
    assert buyers.buyer_in(f"{COOKIE_NAME}={other}") == other_id and list(buyers._headers) == [f"{COOKIE_NAME}={other}"]
