"""A ticket's Admission-Ticket token (SPEC 11): signed, bound to the drop, the ticket and the buyer."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from dropsvc.tickets import TicketTokens

KEY = bytes(range(32))
BUYER, OTHER = "a" * 32, "b" * 32


@pytest.fixture
def tokens() -> TicketTokens:
    return TicketTokens(KEY)


def test_a_token_verifies_for_its_drop_and_buyer(tokens):
    token = tokens.sign(7, 42, BUYER)
    assert tokens.verify(token, 7, BUYER) == 42
    assert tokens.ticket_of_drop(token, 7) == 42
    assert token.startswith("42.") and token.isascii() and len(token) == len("42") + 2 * (1 + 64)


def test_the_macs_are_hmac_sha256_under_the_key(tokens):
    """Recomputed here without the module's code: the drop mac, then the buyer mac."""
    _, drop_mac, buyer_mac = tokens.sign(7, 42, BUYER).split(".")
    assert drop_mac == hmac.new(KEY, b"drop:7:ticket:42", hashlib.sha256).hexdigest()
    assert buyer_mac == hmac.new(KEY, b"drop:7:ticket:42:buyer:" + BUYER.encode(), hashlib.sha256).hexdigest()


def test_another_buyer_holds_a_real_ticket_of_the_drop_that_is_not_theirs(tokens):
    token = tokens.sign(7, 42, BUYER)
    assert tokens.verify(token, 7, OTHER) is None
    assert tokens.ticket_of_drop(token, 7) == 42  # so the purchase can say other_buyer


def test_a_token_of_another_drop_is_nothing_here(tokens):
    token = tokens.sign(8, 42, BUYER)
    assert tokens.verify(token, 7, BUYER) is None and tokens.ticket_of_drop(token, 7) is None


def test_another_key_makes_other_tokens(tokens):
    token = TicketTokens(bytes(32)).sign(7, 42, BUYER)
    assert tokens.verify(token, 7, BUYER) is None and tokens.ticket_of_drop(token, 7) is None


def forged(token: str) -> list[str]:
    number, drop_mac, buyer_mac = token.split(".")
    flip = {"0": "1"}.get(buyer_mac[-1], "0")
    return [
        f"43.{drop_mac}.{buyer_mac}",                  # another ticket's number, the same macs
        f"{number}.{drop_mac}.{buyer_mac[:-1]}{flip}",  # one character of the buyer mac changed
        f"{number}.{drop_mac}.{drop_mac}",              # the drop mac in the buyer mac's place
    ]


def test_a_forged_token_is_refused(tokens):
    token = tokens.sign(7, 42, BUYER)
    for fake in forged(token):
        assert tokens.verify(fake, 7, BUYER) is None, fake
    assert tokens.ticket_of_drop(forged(token)[0], 7) is None


@pytest.mark.parametrize("value", [
    "", ".", "..", "42", "42..", "x.y.z", "042.{d}.{b}", "-42.{d}.{b}", "+42.{d}.{b}", " 42.{d}.{b}",
    "42.{d}.{b}.", "42.{d}.{b}x", "42.{d}x.{b}", "\u0664\u0662.{d}.{b}", "42.{D}.{B}", "1" * 19 + ".{d}.{b}",
    "42.{d}.{b}" + "\u00e9",
])
def test_a_malformed_token_is_nothing(tokens, value):
    _, drop_mac, buyer_mac = tokens.sign(7, 42, BUYER).split(".")
    token = value.format(d=drop_mac, b=buyer_mac, D=drop_mac.upper(), B=buyer_mac.upper())
    assert tokens.verify(token, 7, BUYER) is None
    assert tokens.ticket_of_drop(token, 7) is None


@pytest.mark.parametrize("value", [None, 42, b"42"])
def test_a_token_that_is_not_a_string_is_nothing(tokens, value):
    assert tokens.verify(value, 7, BUYER) is None and tokens.ticket_of_drop(value, 7) is None


def test_the_key_is_long_enough_and_ticket_ids_are_in_range():
    with pytest.raises(ValueError):
        TicketTokens(bytes(31))
    for ticket_id in (0, -1, 10**18):
        with pytest.raises(ValueError):
            TicketTokens(KEY).sign(7, ticket_id, BUYER)
    assert TicketTokens(KEY).sign(7, 10**18 - 1, BUYER).startswith("9" * 18 + ".")
