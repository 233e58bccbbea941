"""The ``dropsvc`` command: check, config errors, drop create/list/show, migrate (SPEC 10)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from dropsvc._engine import SCHEMA_VERSION
from live_server import REPO, clean_env, run_cli

NEW_DROP = ("--slug", "cli-drop", "--name", "CLI drop", "--price", "990000", "--total-stock", "7")


def test_check_is_ok_on_the_running_service(service, api):
    drop = api.create_drop(total_stock=3)
    assert api.buy(drop["id"], "kate").status == 201
    done = run_cli("check", "--db", str(service.db_path))
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_check_exits_1_on_a_broken_invariant(tmp_path):
    db = tmp_path / "broken.db"
    assert run_cli("drop", "create", "--db", str(db), *NEW_DROP).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE drops SET sold = 2")  # sold without orders: the invariant breaks
    done = run_cli("check", "--db", str(db))
    assert done.returncode == 1
    assert "drop 1" in done.stdout and "sold=2" in done.stdout


def test_check_without_a_database_exits_2(tmp_path):
    done = run_cli("check", "--db", str(tmp_path / "missing.db"))
    assert done.returncode == 2
    assert "missing.db" in done.stderr
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(("variable", "value"), [
    ("DROPSVC_PORT", "abc"),
    ("DROPSVC_PORT", "70000"),
    ("DROPSVC_WORKERS", "0"),
    ("DROPSVC_SYNCHRONOUS", "OFF"),
    ("DROPSVC_LOG_LEVEL", "LOUD"),
    ("DROPSVC_READERS", "-1"),
    ("DROPSVC_PUBLIC_URL", "ftp://example.com"),
    ("PAYOS_BASE_URL", "not a url"),
])
def test_bad_config_exits_2_naming_the_variable(tmp_path, variable, value):
    env = clean_env(**{variable: value, "DROPSVC_DB": str(tmp_path / "never.db")})
    done = run_cli("serve", env=env, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0] and repr(value) in lines[0]
    assert not (tmp_path / "never.db").exists()


def test_bad_flag_is_named_too(tmp_path):
    done = run_cli("serve", "--port", "abc", "--db", str(tmp_path / "never.db"))
    assert done.returncode == 2
    assert done.stderr.strip() == "dropsvc: --port must be an integer from 1 to 65535, got 'abc'"


def test_secret_config_errors_do_not_echo_the_secret(tmp_path):
    env = clean_env(DROPSVC_ADMIN_TOKEN="top secret with spaces", DROPSVC_DB=str(tmp_path / "x.db"))
    done = run_cli("serve", env=env)
    assert done.returncode == 2
    assert "DROPSVC_ADMIN_TOKEN" in done.stderr and "top secret" not in done.stderr


def test_drop_create_list_show_roundtrip(tmp_path):
    db = str(tmp_path / "cli.db")
    created = run_cli("drop", "create", "--db", db, *NEW_DROP, "--per-user-limit", "2",
                      "--description", "made on the command line")
    assert created.returncode == 0, created.stderr
    drop = json.loads(created.stdout)
    assert (drop["slug"], drop["price"], drop["total_stock"], drop["per_user_limit"]) == (
        "cli-drop", 990_000, 7, 2)
    assert (drop["remaining"], drop["status"]) == (7, "live")

    listed = run_cli("drop", "list", "--db", db)
    assert listed.returncode == 0 and "cli-drop" in listed.stdout and "0/7" in listed.stdout
    as_json = json.loads(run_cli("drop", "list", "--db", db, "--json").stdout)
    assert as_json == [drop]

    shown = run_cli("drop", "show", str(drop["id"]), "--db", db)
    assert shown.returncode == 0 and json.loads(shown.stdout) == drop

    missing = run_cli("drop", "show", "99", "--db", db)
    assert missing.returncode == 1 and "99" in missing.stderr

    taken = run_cli("drop", "create", "--db", db, *NEW_DROP)
    assert taken.returncode == 1 and "slug_taken" in taken.stderr
    bad = run_cli("drop", "create", "--db", db, "--slug", "Bad Slug", "--name", "x", "--price", "1",
                  "--total-stock", "1")
    assert bad.returncode == 1 and "slug" in bad.stderr
    assert len(json.loads(run_cli("drop", "list", "--db", db, "--json").stdout)) == 1


def test_drop_create_makes_a_queue_drop(tmp_path):
    db = str(tmp_path / "cli.db")
    created = run_cli("drop", "create", "--db", db, *NEW_DROP, "--admission", "queue", "--admit-seconds", "45")
    assert created.returncode == 0, created.stderr
    drop = json.loads(created.stdout)
    assert (drop["admission"], drop["admit_seconds"], drop["admission_margin"]) == ("queue", 45, 1)
    assert len(drop["commitment"]) == 64
    drawn = run_cli("drop", "create", "--db", db, "--slug", "drawn", *NEW_DROP[2:],
                    "--admission", "draw")
    assert drawn.returncode == 1 and "invalid_field: entries_close_at is required for a draw" in drawn.stderr
    drawn = run_cli("drop", "create", "--db", db, "--slug", "drawn", *NEW_DROP[2:], "--admission", "draw",
                    "--starts-at", "1000", "--entries-close-at", "61000")
    assert drawn.returncode == 0, drawn.stderr
    drop = json.loads(drawn.stdout)
    assert (drop["admission"], drop["entries_close_at"], drop["admit_seconds"], drop["admission_margin"]) == (
        "draw", 61000, 3600, 0)


def test_migrate_prints_the_schema_version(tmp_path):
    db = tmp_path / "fresh.db"
    done = run_cli("migrate", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert f"schema version {SCHEMA_VERSION}" in done.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    again = run_cli("migrate", "--db", str(db))
    assert again.returncode == 0 and f"schema version {SCHEMA_VERSION}" in again.stdout


def test_console_script_is_installed(tmp_path):
    script = Path(sys.executable).parent / "dropsvc"
    assert script.exists(), "the project's install (make deps: pip install -e) puts the console script here"
    done = subprocess.run([str(script), "migrate", "--db", str(tmp_path / "s.db")], cwd=REPO,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"schema version {SCHEMA_VERSION}" in done.stdout


def test_serve_help_names_the_servers_and_workers():
    done = run_cli("serve", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "worker processes" in text and "bjoern" in text and "granian" in text
