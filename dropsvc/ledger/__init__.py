"""The ledger: every SQL statement and every stock movement of the service (SPEC 3-5).

``Engine`` is the class scripts and the service use. The hot path
(``purchase``, ``get_drop``, ``list_drops``, ``get_order_by_id``) is the
compiled ``Core`` (``dropsvc._engine``); the cold paths are named operations
written beside it, one module per concern, on the core's ``write(fn)`` and
``read(sql)``:

- ``drops``: create, update, find by slug;
- ``orders``: cancel, expiry, giving stock back (``release``), storing a payment link;
- ``queue``: a queue drop's line (SPEC 11): seed and commitment, tickets, the recorded close;
- ``admission``: check-in, the background worker's admission passes, the queue's state;
- ``line_controls``: the merchant's hand on a line: its figures, pause and resume, longer windows, voiding;
- ``challenges``: a line's proof of work: the drop's terms, the challenges joins have spent;
- ``audit``: the line's fairness export (what ``dropsvc verify-fairness`` checks);
- ``payments``: a verified PayOS callback recorded and applied (SPEC 5's table);
- ``admin``: the admin reads, paged;
- ``invariant``: SPEC 3's check; ``files``: the same on a file, read-only, without an engine.

Nothing outside this package writes SQL. The order statuses, payment event
actions, admissions and ticket kinds and states are the engine's (``schema.pxi``),
which builds the CHECK constraints from them.
"""

from __future__ import annotations

from dropsvc._engine import (
    ADMISSIONS,
    EVENT_ACTIONS,
    ORDER_STATUSES,
    TICKET_KINDS,
    TICKET_STATES,
    Core,
)
from dropsvc.ledger.admin import AdminMixin
from dropsvc.ledger.admission import AdmissionMixin
from dropsvc.ledger.audit import AuditMixin
from dropsvc.ledger.challenges import ChallengesMixin
from dropsvc.ledger.drops import DropsMixin
from dropsvc.ledger.invariant import InvariantMixin
from dropsvc.ledger.line_controls import LineControlsMixin
from dropsvc.ledger.orders import OrdersMixin
from dropsvc.ledger.queue import QueueMixin

__all__ = ["ADMISSIONS", "EVENT_ACTIONS", "ORDER_STATUSES", "TICKET_KINDS", "TICKET_STATES", "Engine"]


class Engine(DropsMixin, OrdersMixin, QueueMixin, AdmissionMixin, LineControlsMixin, ChallengesMixin, AuditMixin,
             AdminMixin, InvariantMixin, Core):
    """One SQLite file: ``Engine(path, *, readers=4, synchronous="NORMAL")``.

    Safe to share between threads; usable as a context manager. Outcomes are
    results, storage failures are ``StorageError`` subclasses.
    """

    # -- what GET /readyz asks ---------------------------------------------

    def write_round_trip(self) -> None:
        """An empty write transaction: the cross-process lock, ``BEGIN IMMEDIATE``, ``COMMIT``."""
        self.write(lambda tx: None)

    def file_schema_version(self) -> int:
        """The file's own schema version (``PRAGMA user_version``), as a reader sees it now."""
        return self.read("PRAGMA user_version")[0]["user_version"]
