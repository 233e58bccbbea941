"""A line's proof of work in the ledger (SPEC 11, ``challenge: pow``): the drop's terms, and the
challenges joins have spent (a solution works once; dropsvc/challenges.py makes and checks them)."""

from __future__ import annotations

from typing import Any

from dropsvc.drops import now_ms

TERMS_SQL = ("SELECT d.admission, d.challenge, d.pow_algorithm, d.pow_cost, d.starts_at, d.ends_at,"
             " d.entries_close_at, c.closed_at FROM drops d LEFT JOIN queue_closes c ON c.drop_id = d.id"
             " WHERE d.id = ?")


class ChallengesMixin:
    """The proof-of-work operations of ``Engine``."""

    def challenge_terms(self, drop_id: int) -> dict[str, Any] | None:
        """The drop's ``admission``, ``challenge``, ``pow_algorithm`` and ``pow_cost``, and the times its
        line takes joins in (``starts_at``, ``ends_at``, ``entries_close_at``, the recorded close's
        ``closed_at``); None if unknown."""
        rows = self.read(TERMS_SQL, (drop_id,))
        return rows[0] if rows else None

    def spend_challenge(self, drop_id: int, nonce: str, expires_at: int, now: int | None = None) -> bool:
        """Record a challenge's nonce as spent by a join: True the first time, False after (reused).

        A spent nonce is kept until its challenge expires (later the challenge is refused as
        expired anyway); the expired ones are pruned in the same write (an index seek when none).
        """
        def spend(tx: Any) -> bool:
            tx.execute("DELETE FROM spent_challenges WHERE expires_at < ?", (now_ms() if now is None else now,))
            tx.execute("INSERT OR IGNORE INTO spent_challenges (nonce, drop_id, expires_at) VALUES (?, ?, ?)",
                       (nonce, drop_id, expires_at))
            return tx.changes == 1

        return self.write(spend)


def takes_joins(terms: dict[str, Any], now: int) -> bool:
    """Whether the line may take a new join at ``now`` by its times, as the engine's join decides
    (``_engine/join.pxi``): a draw's entries window until its close is recorded; a queue until its
    end. When it may not, the join is refused for that, and no proof is asked for it."""
    if terms["admission"] == "draw":
        return terms["starts_at"] <= now < terms["entries_close_at"] and terms["closed_at"] is None
    return terms["ends_at"] is None or now < terms["ends_at"]
