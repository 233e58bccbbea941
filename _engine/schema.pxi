# The data model (SPEC 3) as forward-only migrations keyed on PRAGMA
# user_version. Migration N brings a file from version N-1 to N; a file
# newer than the last one here is refused (MigrationError).

# The order statuses and the payment event actions, listed once: the CHECK constraints below
# and the Python side (dropsvc.ledger) take them from here.
ORDER_STATUSES = ("reserved", "paid", "expired", "cancelled", "refund_required")
EVENT_ACTIONS = ("paid", "duplicate", "amount_mismatch", "refund_required", "unknown_order",
                 "link_mismatch", "not_paid")
# Fair admission (SPEC 11), listed once the same way: how a drop admits its buyers, a ticket's
# kind (fixed when it joins: before the recorded close prequeue, or entry for a draw; after it
# fifo) and its states (SPEC 11's, plus voided: the merchant's hand, in the export for all to see).
ADMISSIONS = ("open", "queue", "draw")
TICKET_KINDS = ("prequeue", "fifo", "entry")
TICKET_STATES = ("waiting", "admitted", "used", "lapsed", "absent", "left", "sold_out", "ended", "voided")
# what a join must bring: nothing, or a solved proof-of-work challenge (dropsvc/challenges.py)
CHALLENGES = ("none", "pow")


cdef str _sql_in_list(tuple values, int column):
    """``('a', 'b', ...)`` with its ``(`` at ``column``, wrapped under its first value at 100 characters.

    The layout migration 1 was written with: a file keeps the text of its CHECK constraints
    (sqlite_master), so migration 1's text must not change. A new status or action needs a
    new migration, not an edit of these tuples alone.
    """
    lines = []
    line = " " * column + "("
    for index, value in enumerate(values):
        item = "'%s'%s" % (value, ")" if index == len(values) - 1 else ",")
        if not line.endswith("(") and len(line) + 1 + len(item) > 100:
            lines.append(line)
            line = " " * (column + 1) + item
        else:
            line += item if line.endswith("(") else " " + item
    lines.append(line)
    return "\n".join(lines).lstrip()


MIGRATIONS = (
    # 1: the whole model of SPEC 3.
    """
    CREATE TABLE drops (
        id              INTEGER PRIMARY KEY,
        slug            TEXT NOT NULL UNIQUE,
        name            TEXT NOT NULL,
        description     TEXT NOT NULL DEFAULT '',
        image_url       TEXT NOT NULL DEFAULT '',
        price           INTEGER NOT NULL CHECK (price >= 0),
        currency        TEXT NOT NULL DEFAULT 'VND',
        total_stock     INTEGER NOT NULL,
        sold            INTEGER NOT NULL DEFAULT 0,
        per_user_limit  INTEGER NOT NULL DEFAULT 1 CHECK (per_user_limit >= 1),
        hold_seconds    INTEGER NOT NULL DEFAULT 600 CHECK (hold_seconds >= 1),
        starts_at       INTEGER NOT NULL,
        ends_at         INTEGER,
        created_at      INTEGER NOT NULL,
        CHECK (sold >= 0 AND sold <= total_stock),
        CHECK (ends_at IS NULL OR ends_at > starts_at)
    );
    CREATE TABLE orders (
        id               INTEGER PRIMARY KEY,
        drop_id          INTEGER NOT NULL REFERENCES drops(id),
        user_id          TEXT NOT NULL,
        quantity         INTEGER NOT NULL CHECK (quantity >= 1),
        amount           INTEGER NOT NULL CHECK (amount >= 0),
        status           TEXT NOT NULL CHECK (status IN
                           %(order_statuses)s),
        idempotency_key  TEXT,
        request_hash     TEXT,
        payment_link_id  TEXT,
        checkout_url     TEXT,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        paid_at          INTEGER
    );
    CREATE UNIQUE INDEX orders_idempotency ON orders (drop_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE holdings (
        drop_id   INTEGER NOT NULL REFERENCES drops(id),
        user_id   TEXT NOT NULL,
        quantity  INTEGER NOT NULL CHECK (quantity >= 0),
        PRIMARY KEY (drop_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE payment_events (
        id           INTEGER PRIMARY KEY,
        order_code   INTEGER NOT NULL,
        reference    TEXT NOT NULL,
        order_id     INTEGER,
        action       TEXT NOT NULL CHECK (action IN
                       %(event_actions)s),
        payload      TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        UNIQUE (order_code, reference)
    );
    """ % {"order_statuses": _sql_in_list(ORDER_STATUSES, 27), "event_actions": _sql_in_list(EVENT_ACTIONS, 23)},
    # 2: fair admission (SPEC 11). The drop's admission settings and its public commitment on its
    # row; the seed in a table of its own (never in a drop's row); the close of the pre-queue as
    # one recorded row; one row per ticket, one ticket per buyer and drop.
    """
    ALTER TABLE drops ADD COLUMN admission TEXT NOT NULL DEFAULT 'open'
        CHECK (admission IN %(admissions)s);
    ALTER TABLE drops ADD COLUMN admit_seconds INTEGER CHECK (admit_seconds >= 1);
    ALTER TABLE drops ADD COLUMN admission_margin INTEGER CHECK (admission_margin >= 0);
    ALTER TABLE drops ADD COLUMN entries_close_at INTEGER;
    ALTER TABLE drops ADD COLUMN commitment TEXT CHECK (length(commitment) = 64);
    CREATE TABLE drop_seeds (
        drop_id  INTEGER PRIMARY KEY REFERENCES drops(id),
        seed     BLOB NOT NULL CHECK (typeof(seed) = 'blob' AND length(seed) = 32)
    );
    CREATE TABLE queue_closes (
        drop_id        INTEGER PRIMARY KEY REFERENCES drops(id),
        closed_at      INTEGER NOT NULL,
        prequeue_size  INTEGER NOT NULL CHECK (prequeue_size >= 0)
    );
    CREATE TABLE tickets (
        drop_id         INTEGER NOT NULL REFERENCES drops(id),
        ticket_id       INTEGER NOT NULL CHECK (ticket_id >= 1),
        buyer           TEXT NOT NULL,
        joined_at       INTEGER NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN %(ticket_kinds)s),
        state           TEXT NOT NULL CHECK (state IN
                          %(ticket_states)s),
        position        INTEGER CHECK (position >= 1),
        draw_key        TEXT CHECK (length(draw_key) = 64),
        checked_in_at   INTEGER,
        admitted_at     INTEGER,
        admitted_until  INTEGER,
        PRIMARY KEY (drop_id, ticket_id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX tickets_buyer ON tickets (drop_id, buyer);
    CREATE UNIQUE INDEX tickets_position ON tickets (drop_id, position) WHERE position IS NOT NULL;
    """ % {"admissions": _sql_in_list(ADMISSIONS, 24), "ticket_kinds": _sql_in_list(TICKET_KINDS, 45),
           "ticket_states": _sql_in_list(TICKET_STATES, 26)},
    # 3: admission (SPEC 11). Every admission of a ticket, logged for the audit (the export's
    # admitted_at list); the line's progress after the close, one row per drop, so a restart or a
    # takeover of the background lock continues where it was (first wave done, finish, end, pause);
    # a ticket's first position, kept when an absent ticket checks in and goes to the end of the line;
    # an index for admission's walk of a drop's tickets by state in position order.
    """
    CREATE TABLE ticket_admissions (
        id              INTEGER PRIMARY KEY,
        drop_id         INTEGER NOT NULL,
        ticket_id       INTEGER NOT NULL,
        admitted_at     INTEGER NOT NULL,
        admitted_until  INTEGER NOT NULL CHECK (admitted_until > admitted_at),
        FOREIGN KEY (drop_id, ticket_id) REFERENCES tickets (drop_id, ticket_id)
    );
    CREATE INDEX ticket_admissions_ticket ON ticket_admissions (drop_id, ticket_id);
    CREATE TABLE queue_progress (
        drop_id           INTEGER PRIMARY KEY REFERENCES drops(id),
        admitted_through  INTEGER NOT NULL DEFAULT 0,
        first_wave_at     INTEGER,
        finished_at       INTEGER,
        ended_at          INTEGER,
        paused_at         INTEGER
    );
    ALTER TABLE tickets ADD COLUMN first_position INTEGER CHECK (first_position >= 1);
    CREATE INDEX tickets_state ON tickets (drop_id, state, position);
    """,
    # 4: proof of work to join (SPEC 11, challenge: pow). The drop's challenge and its ALTCHA terms;
    # the nonce of every challenge a join has spent, until the challenge expires (a solution
    # works once), found by nonce, pruned by expiry.
    """
    ALTER TABLE drops ADD COLUMN challenge TEXT NOT NULL DEFAULT 'none' CHECK (challenge IN %(challenges)s);
    ALTER TABLE drops ADD COLUMN pow_algorithm TEXT;
    ALTER TABLE drops ADD COLUMN pow_cost INTEGER CHECK (pow_cost >= 1);
    CREATE TABLE spent_challenges (
        nonce       TEXT PRIMARY KEY CHECK (length(nonce) = 32),
        drop_id     INTEGER NOT NULL REFERENCES drops(id),
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX spent_challenges_expiry ON spent_challenges (expires_at);
    """ % {"challenges": _sql_in_list(CHALLENGES, 0).strip()},
)

SCHEMA_VERSION = len(MIGRATIONS)


def _new_settings():
    """Secrets and offsets made once, when the schema is created (SPEC 3)."""
    import secrets
    return {
        # key of the keyed MAC that makes public_ref unguessable
        "public_ref_key": secrets.token_hex(32),
        # key of the HMAC that signs the shopper's buyer cookie (issue 7)
        "buyer_cookie_key": secrets.token_hex(32),
        # key of the HMAC that signs a ticket's Admission-Ticket token (SPEC 11)
        "ticket_token_key": secrets.token_hex(32),
        # key of the HMACs that sign proof-of-work challenges (SPEC 11, dropsvc/challenges.py)
        "challenge_key": secrets.token_hex(32),
        # orderCode = offset + orders.id; a random multiple of 10^9 below
        # 9*10^15 so a new or restored database never reuses a PayOS orderCode
        "order_code_offset": str(secrets.randbelow(9_000_000) * 1_000_000_000),
    }
