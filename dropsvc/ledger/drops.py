"""Drops in the ledger: create, update, find by slug (the field checks are dropsvc.drops')."""

from __future__ import annotations

from typing import Any

from dropsvc._engine import DROP_COLUMNS
from dropsvc.drops import (
    DropConflict,
    line_fields_changed,
    merge_drop_changes,
    validate_drop_changes,
    validate_new_drop,
)
from dropsvc.ledger.queue import commit_to_seed, refuse_line_changes

DROP_INSERT_SQL = (
    "INSERT INTO drops (slug, name, description, image_url, price, currency, total_stock, sold,"
    " per_user_limit, hold_seconds, starts_at, ends_at, created_at, admission, admit_seconds,"
    " admission_margin, entries_close_at, challenge, pow_algorithm, pow_cost) VALUES (:slug, :name, :description,"
    " :image_url, :price, :currency, :total_stock, :sold, :per_user_limit, :hold_seconds, :starts_at, :ends_at,"
    " :created_at, :admission, :admit_seconds, :admission_margin, :entries_close_at, :challenge, :pow_algorithm,"
    " :pow_cost)"
)
# the drop as get_drop shows it (the engine's reader columns, the admission fields among them)
DROP_SQL = f"SELECT {DROP_COLUMNS} FROM drops WHERE id = ?"


def _slug_taken(slug: str) -> DropConflict:
    return DropConflict("slug_taken", f"slug {slug!r} is taken", "slug")


class DropsMixin:
    """The drop operations of ``Engine``."""

    def create_drop(self, **fields: Any) -> int:
        """Create a drop (SPEC 3 defaults filled in); returns its id.

        A queue drop gets its seed and commitment (SPEC 11) in the same transaction.
        """
        row = validate_new_drop(fields)

        def insert(tx: Any) -> int:
            if tx.execute("SELECT 1 FROM drops WHERE slug = ?", (row["slug"],)):
                raise _slug_taken(row["slug"])
            tx.execute(DROP_INSERT_SQL, row)
            drop_id = tx.last_id
            if row["admission"] != "open":
                commit_to_seed(tx, drop_id, row["admission"])
            return drop_id

        return self.write(insert)

    def update_drop(self, drop_id: int, **changes: Any) -> dict[str, Any] | None:
        """Change a drop's fields; stock never below sold. Returns the row, None if unknown.

        Once the drop's line has a ticket, its LINE_FIELDS stay as they are (409 tickets_exist).
        """
        checked = validate_drop_changes(changes)

        def update(tx: Any) -> dict[str, Any] | None:
            rows = tx.execute(DROP_SQL, (drop_id,))
            if not rows:
                return None
            stored = rows[0]
            merged = merge_drop_changes(stored, checked)
            if "slug" in checked and tx.execute("SELECT 1 FROM drops WHERE slug = ? AND id != ?",
                                                (checked["slug"], drop_id)):
                raise _slug_taken(checked["slug"])
            refuse_line_changes(tx, drop_id, line_fields_changed(stored, merged))
            # the fields given, and those the admission settled (defaults in, or out for open)
            written = [field for field in merged if field in checked or merged[field] != stored[field]]
            assignments = ", ".join(f"{field} = :{field}" for field in written)
            tx.execute(f"UPDATE drops SET {assignments} WHERE id = :id",
                       {**{field: merged[field] for field in written}, "id": drop_id})
            if merged["admission"] != stored["admission"]:
                commit_to_seed(tx, drop_id, merged["admission"])  # the commitment moves with it: read it back
                return tx.execute(DROP_SQL, (drop_id,))[0]
            return merged

        return self.write(update)

    def drop_id_by_slug(self, slug: str) -> int | None:
        """The id of the drop with this slug, or None (on a reader)."""
        rows = self.read("SELECT id FROM drops WHERE slug = ?", (slug,))
        return rows[0]["id"] if rows else None
