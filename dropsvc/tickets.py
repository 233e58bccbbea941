"""A ticket's token (SPEC 11): what a buyer sends back as the ``Admission-Ticket`` header.

A queue drop's ticket is given to one buyer (the ``buyer`` cookie's id, see
``dropsvc.buyers``). Its token is ``<ticket_id>.<drop mac>.<buyer mac>``, both
MACs HMAC-SHA256 under the database's ``ticket_token_key`` (made with the
schema, kept with the data), lower-case hex:

- the drop mac over the drop and the ticket: the service gave ticket N of this drop;
- the buyer mac over the drop, the ticket and the buyer: to this buyer.

``verify`` checks the buyer mac alone (one HMAC on the purchase path). A token
whose buyer mac fails but whose drop mac holds names a real ticket of this
drop (``ticket_of_drop``): presented by another buyer, the purchase answers
``other_buyer`` rather than ``invalid``. Comparisons are constant-time; a
malformed or forged token is simply no ticket.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_KEY_BYTES = 32
MAC_LENGTH = 2 * hashlib.sha256().digest_size  # hex
MAX_TICKET_DIGITS = 18  # below 2**63, the engine's integers
MAX_TOKEN_LENGTH = MAX_TICKET_DIGITS + 2 * (1 + MAC_LENGTH)


class TicketTokens:
    """Signs and verifies ticket tokens with one key: ``TicketTokens(engine.secret("ticket_token_key"))``."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the ticket token key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def _drop_mac(self, drop_id: int, ticket_id: int) -> str:
        return hmac.digest(self._key, b"drop:%d:ticket:%d" % (drop_id, ticket_id), "sha256").hex()

    def _buyer_mac(self, drop_id: int, ticket_id: int, buyer_id: str) -> str:
        message = b"drop:%d:ticket:%d:buyer:%s" % (drop_id, ticket_id, buyer_id.encode("utf-8"))
        return hmac.digest(self._key, message, "sha256").hex()

    def sign(self, drop_id: int, ticket_id: int, buyer_id: str) -> str:
        """The token of ``ticket_id`` of ``drop_id``, given to ``buyer_id``."""
        if not 1 <= ticket_id < 10**MAX_TICKET_DIGITS:
            raise ValueError(f"ticket_id must be from 1 to {MAX_TICKET_DIGITS} digits")
        return f"{ticket_id}.{self._drop_mac(drop_id, ticket_id)}.{self._buyer_mac(drop_id, ticket_id, buyer_id)}"

    def verify(self, token: str, drop_id: int, buyer_id: str) -> int | None:
        """The ticket id of a token of ``drop_id`` given to ``buyer_id``, else None."""
        parts = _parts(token)
        if parts is None:
            return None
        ticket_id, _, buyer_mac = parts
        if not hmac.compare_digest(self._buyer_mac(drop_id, ticket_id, buyer_id), buyer_mac):
            return None
        return ticket_id

    def ticket_of_drop(self, token: str, drop_id: int) -> int | None:
        """The ticket id of a real token of ``drop_id``, whichever buyer it was given to, else None."""
        parts = _parts(token)
        if parts is None:
            return None
        ticket_id, drop_mac, _ = parts
        if not hmac.compare_digest(self._drop_mac(drop_id, ticket_id), drop_mac):
            return None
        return ticket_id


def _parts(token: str) -> tuple[int, str, str] | None:
    """(ticket id, drop mac, buyer mac) of a well-formed token, else None (nothing is trusted yet)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    number, dot, macs = token.partition(".")
    drop_mac, dot2, buyer_mac = macs.partition(".")
    if (not dot or not dot2 or not number.isdigit() or number[0] == "0" or len(number) > MAX_TICKET_DIGITS
            or len(drop_mac) != MAC_LENGTH or len(buyer_mac) != MAC_LENGTH):
        return None
    return int(number), drop_mac, buyer_mac
