"""Drops in the ledger: create, update, find by slug (the field checks are dropsvc.drops')."""

from __future__ import annotations

from typing import Any

from dropsvc.drops import DropConflict, merge_drop_changes, validate_drop_changes, validate_new_drop

DROP_INSERT_SQL = (
    "INSERT INTO drops (slug, name, description, image_url, price, currency, total_stock, sold,"
    " per_user_limit, hold_seconds, starts_at, ends_at, created_at) VALUES (:slug, :name,"
    " :description, :image_url, :price, :currency, :total_stock, :sold, :per_user_limit,"
    " :hold_seconds, :starts_at, :ends_at, :created_at)"
)


def _slug_taken(slug: str) -> DropConflict:
    return DropConflict("slug_taken", f"slug {slug!r} is taken", "slug")


class DropsMixin:
    """The drop operations of ``Engine``."""

    def create_drop(self, **fields: Any) -> int:
        """Create a drop (SPEC 3 defaults filled in); returns its id."""
        row = validate_new_drop(fields)

        def insert(tx: Any) -> int:
            if tx.execute("SELECT 1 FROM drops WHERE slug = ?", (row["slug"],)):
                raise _slug_taken(row["slug"])
            tx.execute(DROP_INSERT_SQL, row)
            return tx.last_id

        return self.write(insert)

    def update_drop(self, drop_id: int, **changes: Any) -> dict[str, Any] | None:
        """Change a drop's fields; stock never below sold. Returns the row, None if unknown."""
        checked = validate_drop_changes(changes)

        def update(tx: Any) -> dict[str, Any] | None:
            rows = tx.execute("SELECT * FROM drops WHERE id = ?", (drop_id,))
            if not rows:
                return None
            merged = merge_drop_changes(rows[0], checked)
            if "slug" in checked and tx.execute("SELECT 1 FROM drops WHERE slug = ? AND id != ?",
                                                (checked["slug"], drop_id)):
                raise _slug_taken(checked["slug"])
            assignments = ", ".join(f"{field} = :{field}" for field in checked)
            tx.execute(f"UPDATE drops SET {assignments} WHERE id = :id", {**checked, "id": drop_id})
            return merged

        return self.write(update)

    def drop_id_by_slug(self, slug: str) -> int | None:
        """The id of the drop with this slug, or None (on a reader)."""
        rows = self.read("SELECT id FROM drops WHERE slug = ?", (slug,))
        return rows[0]["id"] if rows else None
