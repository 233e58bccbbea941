"""The wheel carries the page: built from a copy of the checkout, installed in a fresh venv, shown in Chromium.

The copy is what a fresh clone holds (git's tracked and new files, nothing ignored), plus
static/vendor/ when the test wants what ``make static-assets`` adds. Nothing is built in the
checkout itself. The fresh venv gets the wheel (``--no-index``, ``--no-deps``) and, through a
.pth file, this venv's site-packages for the third-party packages only: this project is there
as an editable install whose own .pth is never read from a directory a .pth adds, so
``dropsvc`` can only come from the wheel (which the test checks).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from live_server import REPO, assert_no_unhandled_errors, clean_env, exchange, launch
from page_helpers import icon_statuses
from playwright.sync_api import expect

VENDORED = Path("static/vendor/alpine.min.js")
BUILD_TIMEOUT = 300  # seconds; the engine compiles in about 15


def checkout_copy(dest: Path, *, with_vendor: bool) -> Path:
    """The checkout's tracked and untracked-but-not-ignored files in ``dest``; static/vendor/ if asked."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():  # a tracked file deleted in the working tree is not in a clone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    if with_vendor:
        assert (REPO / VENDORED).is_file(), f"no {VENDORED} in the checkout: run `make static-assets`"
        (dest / VENDORED).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / VENDORED, dest / VENDORED)
    return dest


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)


def build_wheel(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``pip wheel`` of ``source`` without the network (Cython and setuptools come from this venv)."""
    return run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
               "--wheel-dir", out, source, cwd=source)


def test_without_alpine_an_editable_install_builds_but_a_wheel_refuses(tmp_path):
    source = checkout_copy(tmp_path / "src", with_vendor=False)
    refused = build_wheel(source, tmp_path / "dist")
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and not list((tmp_path / "dist").glob("*.whl"))
    assert f"{VENDORED} is missing" in said and "run `make static-assets`" in said, said
    # what `pip install -e` (make deps, before make static-assets) asks the backend for: copies nothing
    editable = run(sys.executable, "-c", "import sys; from setuptools import build_meta; "
                   "print(build_meta.build_editable(sys.argv[1]))", tmp_path / "editable", cwd=source)
    assert editable.returncode == 0, editable.stdout + editable.stderr
    with zipfile.ZipFile(tmp_path / "editable" / editable.stdout.split()[-1]) as wheel:
        assert not [name for name in wheel.namelist() if "static" in name], wheel.namelist()
    assert not (source / "dropsvc" / "static").exists()


def test_the_installed_wheel_serves_the_page_with_no_checkout_around(tmp_path, browser):
    source = checkout_copy(tmp_path / "src", with_vendor=True)
    built = build_wheel(source, tmp_path / "dist")
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "dist").glob("limited_drop-*.whl")
    page_files = {"index.html", "app.js", "queue.js", "app.css", "favicon.ico", "vendor/alpine.min.js"}
    with zipfile.ZipFile(wheel) as archive:
        for name in page_files:
            assert archive.read(f"dropsvc/static/{name}") == (REPO / "static" / name).read_bytes(), name
        template = (REPO / "deploy" / "nginx.conf.template").read_bytes()
        assert archive.read("dropsvc/run/nginx.conf.template") == template  # what render_nginx_conf fills in

    venv, home = tmp_path / "fresh-venv", tmp_path / "home"
    home.mkdir()
    assert run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=home).returncode == 0
    python = venv / "bin" / "python"
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel,
                    cwd=home)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=home).stdout.strip())
    third_party = dict.fromkeys((sysconfig.get_path("purelib"), sysconfig.get_path("platlib")))
    (purelib / "checkout-venv-deps.pth").write_text("".join(f"{path}\n" for path in third_party))
    where = run(python, "-c", "import dropsvc, dropsvc._engine, falcon; print(dropsvc.__file__)", cwd=home)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    site = run(python, "-c", "from dropsvc.run.deploy import render_site_conf as r; print(r('app:8000', '/srv/s'))",
               cwd=home)
    assert site.returncode == 0 and "server app:8000;" in site.stdout, site.stderr

    server = launch(home, admin_token=None, demo=True, command=(str(venv / "bin" / "dropsvc"),), cwd=home)
    try:
        conn = server.connect()
        page = exchange(conn, "GET", "/")
        icon = exchange(conn, "GET", "/favicon.ico")
        conn.close()
        assert page.status == 200, page.body
        # the page names Alpine by the hash of its bytes: the ones nginx serves from the checkout's static/
        alpine = hashlib.sha256((REPO / VENDORED).read_bytes()).hexdigest()[:16]
        assert re.search(rf'src="/static/vendor/alpine\.min\.js\?v={alpine}"', page.body.decode())
        assert (icon.status, icon.headers["content-type"]) == (200, "image/x-icon")
        assert icon.body == (REPO / "static" / "favicon.ico").read_bytes()

        browser.page.goto(server.base_url + "/")
        card = browser.page.locator("li.drop")  # the demo drop, alone in a new database
        expect(card.locator("h2")).to_have_text("Limited sneaker")
        expect(card.locator(".price")).to_have_text("2.500.000\u00a0₫")
        expect(card.get_by_role("button", name="Buy")).to_be_visible()
        expect(card.get_by_role("button", name="Buy")).to_be_enabled()
        assert set(icon_statuses(browser, server)) == {200}
        assert browser.console_errors == []
    finally:
        status = server.stop()
    assert status == 0, server.log()
    assert_no_unhandled_errors(server)
