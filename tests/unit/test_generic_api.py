"""The cold-path API: write(fn), read(sql), settings, public refs."""

from __future__ import annotations

import threading

import pytest

from dropsvc import Engine
from dropsvc.drops import DropConflict, InvalidDropField


def test_write_commits_and_returns_fn_value(engine, make_drop):
    drop_id = make_drop()

    def rename(tx):
        rows = tx.execute("UPDATE drops SET name = ? WHERE id = ? RETURNING name", ("New", drop_id))
        return rows, tx.changes

    assert engine.write(rename) == ([{"name": "New"}], 1)
    assert engine.get_drop(drop_id)["name"] == "New"


def test_write_rolls_back_when_fn_raises(engine, make_drop):
    drop_id = make_drop()

    def fail(tx):
        tx.execute("UPDATE drops SET name = 'changed' WHERE id = ?", (drop_id,))
        raise KeyError("boom")

    with pytest.raises(KeyError):
        engine.write(fail)
    assert engine.get_drop(drop_id)["name"] == "Test sneaker"


def test_tx_is_dead_after_write(engine):
    kept = []
    engine.write(kept.append)
    with pytest.raises(RuntimeError, match="over"):
        kept[0].execute("SELECT 1")


def test_nested_write_is_refused_not_deadlocked(engine, make_drop):
    drop_id = make_drop()
    with pytest.raises(RuntimeError, match="inside Engine.write"):
        engine.write(lambda tx: engine.purchase(drop_id, "a"))
    assert engine.purchase(drop_id, "a").ok  # and the lock was released


def test_read_refuses_writes(engine):
    with pytest.raises(ValueError, match="read-only"):
        engine.read("DELETE FROM drops")


def test_read_named_and_positional_parameters(engine, make_drop):
    drop_id = make_drop(slug="named")
    assert engine.read("SELECT id FROM drops WHERE slug = :slug", {"slug": "named"}) == [{"id": drop_id}]
    assert engine.read("SELECT ? + ? AS n", (2, 3)) == [{"n": 5}]
    with pytest.raises(ValueError, match="parameters"):
        engine.read("SELECT ? AS n", ())
    with pytest.raises(TypeError):
        engine.read("SELECT ? AS n", (object(),))


def test_settings_are_made_once_and_kept(db_path):
    with Engine(db_path) as first:
        offset, ref = first.order_code_offset, first.public_ref(7)
    with Engine(db_path) as again:
        assert again.order_code_offset == offset
        assert again.public_ref(7) == ref
    assert offset % 10**9 == 0 and 0 <= offset < 9 * 10**15


def test_public_refs_are_unguessable_and_canonical(engine):
    ref = engine.public_ref(42)
    assert len(ref) == 26 and engine.order_id_from_ref(ref) == 42
    assert engine.order_id_from_ref(ref.upper()) is None
    for position in range(len(ref)):
        for letter in "a7":
            if ref[position] != letter:
                assert engine.order_id_from_ref(ref[:position] + letter + ref[position + 1:]) is None
    assert engine.order_id_from_ref(None) is None
    assert engine.order_id_from_ref("é" * 26) is None


def test_create_drop_validates_and_fills_defaults(engine):
    drop_id = engine.create_drop(slug="x", name="X", price=100, total_stock=5)
    drop = engine.get_drop(drop_id)
    assert drop["currency"] == "VND" and drop["per_user_limit"] == 1 and drop["hold_seconds"] == 600
    assert drop["ends_at"] is None and drop["sold"] == 0
    with pytest.raises(DropConflict) as taken:
        engine.create_drop(slug="x", name="Y", price=1, total_stock=1)
    assert taken.value.code == "slug_taken"
    for bad in ({"price": -1}, {"price": True}, {"total_stock": 0}, {"slug": "Bad Slug"},
                {"per_user_limit": 0}, {"currency": "USD"}, {"colour": "red"},
                {"starts_at": 2000, "ends_at": 1000}):
        fields = {"slug": "ok-slug", "name": "N", "price": 1, "total_stock": 1, **bad}
        with pytest.raises(InvalidDropField):
            engine.create_drop(**fields)
    assert len(engine.list_drops()) == 1


def test_update_drop_never_below_sold(engine, make_drop):
    drop_id = make_drop(total_stock=5, per_user_limit=5)
    engine.purchase(drop_id, "alice", 3)
    with pytest.raises(DropConflict) as below:
        engine.update_drop(drop_id, total_stock=2)
    assert below.value.code == "stock_below_sold"
    assert engine.update_drop(drop_id, total_stock=3)["total_stock"] == 3
    assert engine.purchase(drop_id, "bob").outcome == "sold_out"
    assert engine.update_drop(999, name="nobody") is None


def test_reads_are_prepared_once_per_reader_and_stay_right(engine, make_drop):
    """read() keeps its statements per reader (64 at most, the oldest going first): the same text
    twice, past the limit, after a write and after a failed bind gives what a fresh statement would."""
    drop_id = make_drop(total_stock=3)
    for round_ in range(2):
        for n in range(80):  # more texts than a reader keeps
            assert engine.read(f"SELECT {n} + ? AS n", (round_,)) == [{"n": n + round_}]
    assert engine.read("SELECT sold FROM drops WHERE id = ?", (drop_id,)) == [{"sold": 0}]
    assert engine.purchase(drop_id, "ann").ok
    assert engine.read("SELECT sold FROM drops WHERE id = ?", (drop_id,)) == [{"sold": 1}]  # a fresh snapshot
    with pytest.raises(ValueError):
        engine.read("SELECT ? AS n", (1, 2))
    assert engine.read("SELECT ? AS n", (7,)) == [{"n": 7}]
    for _ in range(2):  # refused each time, cached or not
        with pytest.raises(ValueError, match="read-only"):
            engine.read("UPDATE drops SET sold = sold")


def test_read_row_is_the_first_row_or_none(engine, make_drop):
    first, second = make_drop(), make_drop()
    assert engine.read_row("SELECT id FROM drops ORDER BY id") == {"id": first}
    assert engine.read_row("SELECT id FROM drops WHERE id > ? ORDER BY id", (first,)) == {"id": second}
    assert engine.read_row("SELECT id FROM drops WHERE id > ?", (second,)) is None
    with pytest.raises(ValueError, match="read-only"):
        engine.read_row("DELETE FROM drops")


def test_close_waits_for_readers_in_use(db_path):
    engine = Engine(db_path, readers=1)
    drop_id = engine.create_drop(slug="c", name="C", price=1, total_stock=1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(engine.get_drop(drop_id)["id"]))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.close()
    assert results == [drop_id] * 8


def test_secrets_added_later_are_made_once_for_old_files(db_path):
    with Engine(db_path) as engine:
        engine.write(lambda tx: tx.execute("DELETE FROM settings WHERE key = 'buyer_cookie_key'"))
    with Engine(db_path) as engine:
        made = engine.secret("buyer_cookie_key")
        assert len(made) == 32
    with Engine(db_path) as engine:
        assert engine.secret("buyer_cookie_key") == made


def test_new_files_get_small_pages_and_old_files_keep_theirs(tmp_path):
    new = tmp_path / "new.db"
    with Engine(new) as engine:
        assert engine.read("PRAGMA page_size", ()) == [{"page_size": 1024}]
    old = tmp_path / "old.db"
    with Engine(old, page_size=4096) as engine:
        drop_id = engine.create_drop(slug="kept", name="Kept", price=1, total_stock=5)
    with Engine(old) as engine:  # reopened with the default: the file's own size stays
        assert engine.read("PRAGMA page_size", ()) == [{"page_size": 4096}]
        assert engine.purchase(drop_id, "a").ok
        assert engine.check() == []


@pytest.mark.parametrize("size", [0, 1000, 256, 131072])
def test_page_size_must_be_a_power_of_two_sqlite_accepts(tmp_path, size):
    with pytest.raises(ValueError, match="page_size"):
        Engine(tmp_path / "x.db", page_size=size)
    assert not (tmp_path / "x.db").exists()  # refused before the file is made
