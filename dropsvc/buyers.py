"""Who is buying, without accounts: a buyer id in a cookie the service signs.

The shopper page gets a ``buyer`` cookie on ``GET /`` (and on the order page):
a random 128-bit id, a dot, and the HMAC-SHA256 of the id under the
database's ``buyer_cookie_key`` (made with the schema, kept with the data, so
every worker process and a restarted service agree on it). HttpOnly,
SameSite=Lax, Path=/; Secure when the service's public URL is https.

A purchase that carries a valid cookie is made for that buyer whatever the
body's ``user_id`` says, so a script cannot reset its per-user limit by
inventing ids. What that is worth without accounts: see the README ("What the
per-user limit is worth").

The purchase hot path pays for this only when a Cookie header is present:
one cookie parse, and the first time a value is seen one HMAC and one constant-time compare.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import falcon

COOKIE_NAME = "buyer"
COOKIE_MAX_AGE = 365 * 24 * 3600  # seconds; the id is re-issued whenever it is missing or invalid
ID_BYTES = 16  # 128 bits
ID_LENGTH = 2 * ID_BYTES  # hex
MAC_LENGTH = 2 * hashlib.sha256().digest_size  # hex
COOKIE_LENGTH = ID_LENGTH + 1 + MAC_LENGTH
USER_ID_PREFIX = "buyer-"  # orders of cookie buyers read "buyer-<id>" (never shown to other shoppers)
MIN_KEY_BYTES = 32
VERIFIED_CACHE = 65536  # good cookie values kept per process; the whole cache is dropped when full
HEADER_CACHE_LENGTH = 2 * COOKIE_LENGTH  # Cookie headers at most this long are kept too (each cache VERIFIED_CACHE)


class Buyers:
    """Issues and verifies buyer cookies with one key: ``Buyers(engine.secret("buyer_cookie_key"))``."""

    def __init__(self, key: bytes, *, secure: bool = False) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the buyer cookie key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.secure = secure
        self._verified: dict[str, str] = {}  # cookie values found good, and their buyer ids (per process)
        self._headers: dict[str, str] = {}  # short Cookie headers found to carry one, and its buyer id

    def _mac(self, buyer_id: str) -> str:
        return hmac.digest(self._key, buyer_id.encode("ascii"), "sha256").hex()

    def sign(self, buyer_id: str) -> str:
        """The cookie value for ``buyer_id``: ``<id>.<mac>``."""
        return f"{buyer_id}.{self._mac(buyer_id)}"

    def new_cookie(self) -> tuple[str, str]:
        """(a fresh random buyer id, its signed cookie value)."""
        buyer_id = secrets.token_hex(ID_BYTES)
        return buyer_id, self.sign(buyer_id)

    def verify(self, value: str) -> str | None:
        """The buyer id a cookie value carries, or None when it is malformed or forged.

        A value found good is kept (VERIFIED_CACHE of them per process): a waiting buyer's
        polls check its MAC once, not on every view.
        """
        known = self._verified.get(value)
        if known is not None:
            return known
        if len(value) != COOKIE_LENGTH or value[ID_LENGTH] != "." or not value.isascii():
            return None
        buyer_id = value[:ID_LENGTH]
        if not hmac.compare_digest(self._mac(buyer_id), value[ID_LENGTH + 1:]):
            return None
        _remember(self._verified, value, buyer_id)
        return buyer_id

    def buyer_of(self, req: falcon.Request) -> str | None:
        """The verified buyer id of a request (first valid ``buyer`` cookie), or None.

        Free when the request has no Cookie header (scripts, the API).
        """
        return self.buyer_in(req.get_header("Cookie"))

    def buyer_in(self, cookie_header: str | None) -> str | None:
        """The verified buyer id of a Cookie header's first valid ``buyer`` cookie, or None.

        A short header found to carry one is kept as a whole: a browser sends the same header on
        every request, so a waiting buyer's next view parses nothing.
        """
        if cookie_header is None:
            return None
        known = self._headers.get(cookie_header)
        if known is not None:
            return known
        if COOKIE_NAME not in cookie_header:
            return None
        for pair in cookie_header.split(";"):
            name, sep, value = pair.partition("=")
            if sep and name.strip() == COOKIE_NAME:
                buyer_id = self.verify(value.strip())
                if buyer_id is not None:
                    if len(cookie_header) <= HEADER_CACHE_LENGTH:
                        _remember(self._headers, cookie_header, buyer_id)
                    return buyer_id
        return None

    def user_id_in(self, cookie_header: str | None) -> str | None:
        """The ``user_id`` purchases are made for under this Cookie header, when its cookie is valid."""
        buyer_id = self.buyer_in(cookie_header)
        return None if buyer_id is None else USER_ID_PREFIX + buyer_id

    def ensure_cookie(self, req: falcon.Request, resp: falcon.Response) -> str:
        """The request's buyer id; a fresh signed cookie is set when it has none or an invalid one."""
        buyer_id = self.buyer_of(req)
        if buyer_id is not None:
            return buyer_id
        buyer_id, value = self.new_cookie()
        resp.set_cookie(COOKIE_NAME, value, max_age=COOKIE_MAX_AGE, path="/", secure=self.secure,
                        http_only=True, same_site="Lax")
        return buyer_id


def _remember(cache: dict[str, str], key: str, buyer_id: str) -> None:
    """Keep ``key``'s buyer id in one of the per-process caches; the whole cache is dropped when full."""
    if len(cache) >= VERIFIED_CACHE:
        cache.clear()
    cache[key] = buyer_id
