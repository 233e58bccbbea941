"""The page routes and the buyer cookie: cache headers, the order page, purchases made for the cookie's buyer.

In process through falcon.testing, plus one pass over real HTTP (bjoern, meinheld, granian) at the end.
"""

from __future__ import annotations

import gzip
import importlib.resources
import importlib.util
import re
import struct
import zlib
from http.cookies import SimpleCookie

import pytest
from falcon import testing
from live_server import REPO, exchange

from dropsvc import Engine
from dropsvc.buyers import COOKIE_NAME, USER_ID_PREFIX
from dropsvc.config import Config
from dropsvc.drops import now_ms
from dropsvc.http.app import create_app
from dropsvc.http.resources.pages import ASSET_NAMES, Site

YEAR = "public, max-age=31536000, immutable"


@pytest.fixture
def shop(tmp_path):
    engine = Engine(tmp_path / "pages.db", readers=1)
    client = testing.TestClient(create_app(engine, Config.load({})))
    yield client, engine
    engine.close()


def buyer_cookie(reply: testing.Result) -> str | None:
    """The value of the buyer cookie a reply sets, checking its attributes."""
    for header in reply.headers.get("set-cookie", "").split("\n"):
        if header.startswith(COOKIE_NAME + "="):
            attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
            assert {"httponly", "path", "samesite", "max-age"} <= attributes, header
            assert "SameSite=Lax" in header and "Path=/" in header
            return SimpleCookie(header)[COOKIE_NAME].value
    return None


def buy(client: testing.TestClient, drop_id: int, body: dict, cookie: str | None = None,
        key: str | None = None) -> testing.Result:
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
    if key:
        headers["Idempotency-Key"] = key
    return client.simulate_post(f"/api/drops/{drop_id}/purchases", json=body, headers=headers)


# -- the cookie ------------------------------------------------------------------------------------

def test_the_page_issues_a_signed_cookie_once(shop):
    client, _ = shop
    first = client.simulate_get("/")
    cookie = buyer_cookie(first)
    assert first.status_code == 200 and cookie and re.fullmatch(r"[0-9a-f]{32}\.[0-9a-f]{64}", cookie)
    assert "Secure" not in first.headers["set-cookie"]  # http://127.0.0.1: a Secure cookie would not come back
    again = client.simulate_get("/", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    assert buyer_cookie(again) is None


@pytest.mark.parametrize("forged", ["0" * 32 + "." + "0" * 64, "x", "not.a.cookie", "é" * 97])
def test_a_forged_cookie_is_ignored_and_replaced(shop, forged):
    client, engine = shop
    reply = client.simulate_get("/", headers={"Cookie": f"{COOKIE_NAME}={forged}"})
    fresh = buyer_cookie(reply)
    assert reply.status_code == 200 and fresh and fresh != forged
    drop_id = engine.create_drop(slug="forged", name="Forged", price=1, total_stock=5, per_user_limit=5)
    assert buy(client, drop_id, {}, cookie=forged).status_code == 422  # no identity: user_id is required
    reply = buy(client, drop_id, {"user_id": "mallory"}, cookie=forged)
    assert reply.status_code == 201 and reply.json["user_id"] == "mallory"


def test_a_secure_public_url_makes_a_secure_cookie(tmp_path):
    with Engine(tmp_path / "tls.db", readers=1) as engine:
        app = create_app(engine, Config.load({}, public_url="https://shop.example"))
        reply = testing.TestClient(app).simulate_get("/")
        assert "Secure" in reply.headers["set-cookie"]


def test_with_a_valid_cookie_the_purchase_is_the_buyers_whatever_the_body_says(shop):
    client, engine = shop
    cookie = buyer_cookie(client.simulate_get("/"))
    buyer = USER_ID_PREFIX + cookie.split(".")[0]
    drop_id = engine.create_drop(slug="cookie", name="Cookie", price=1000, total_stock=10, per_user_limit=3)
    assert buy(client, drop_id, {"user_id": "alice"}, cookie).json["user_id"] == buyer
    assert buy(client, drop_id, {}, cookie).json["user_id"] == buyer  # user_id optional with a cookie
    assert buy(client, drop_id, {"user_id": 42, "quantity": 1}, cookie).json["user_id"] == buyer
    assert buy(client, drop_id, {}).status_code == 422  # no cookie: today's rules
    assert buy(client, drop_id, {"user_id": "alice"}).json["user_id"] == "alice"
    assert buy(client, drop_id, {"quantity": 0}, cookie).status_code == 422  # the rest is still checked


def test_the_per_user_limit_holds_across_invented_ids_with_one_cookie(shop):
    client, engine = shop
    cookie = buyer_cookie(client.simulate_get("/"))
    drop_id = engine.create_drop(slug="limit", name="Limit", price=1000, total_stock=10, per_user_limit=1)
    assert buy(client, drop_id, {"user_id": "bot-1"}, cookie).status_code == 201
    for invented in ("bot-2", "bot-3", "someone-else"):
        refused = buy(client, drop_id, {"user_id": invented}, cookie)
        assert refused.status_code == 409 and refused.json["error"]["code"] == "per_user_limit"
    other = buyer_cookie(client.simulate_get("/"))  # another browser is another buyer
    assert buy(client, drop_id, {"user_id": "bot-1"}, other).status_code == 201
    assert engine.read("SELECT sold FROM drops WHERE id = ?", (drop_id,))[0]["sold"] == 2


def test_a_retried_click_is_the_same_order_whatever_user_id_the_retry_sends(shop):
    client, engine = shop
    cookie = buyer_cookie(client.simulate_get("/"))
    drop_id = engine.create_drop(slug="retry", name="Retry", price=1000, total_stock=10, per_user_limit=5)
    first = buy(client, drop_id, {"user_id": "a"}, cookie, key="click-1")
    again = buy(client, drop_id, {"user_id": "b"}, cookie, key="click-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["public_ref"] == again.json["public_ref"]


# -- static assets and pages -----------------------------------------------------------------------

def test_assets_are_immutable_at_their_version_and_revalidated_without(shop):
    client, _ = shop
    page = client.simulate_get("/")
    assert page.headers["cache-control"] == "no-cache" and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-eval'" in policy  # and so workers too: 'self' only, never blob: or data:
    assert "blob:" not in policy and "worker-src" not in policy and "'unsafe-inline'" not in policy
    # scripts, stylesheets, and the ALTCHA workers the page names in <meta content="...">
    urls = re.findall(r'(?:src|href|content)="(/static/[^"]+)"', page.text)
    assert sorted(u.split("?")[0] for u in urls) == sorted(f"/static/{name}" for name in ASSET_NAMES)
    for url in urls:
        path, _, query = url.partition("?")
        assert re.fullmatch(r"v=[0-9a-f]{16}", query), url
        versioned = client.simulate_get(path, query_string=query)
        assert versioned.status_code == 200 and versioned.headers["cache-control"] == YEAR
        assert versioned.headers["x-content-type-options"] == "nosniff"
        bare = client.simulate_get(path)
        assert bare.headers["cache-control"] == "no-cache" and bare.content == versioned.content
        stale = client.simulate_get(path, query_string="v=0000000000000000")
        assert stale.headers["cache-control"] == "no-cache"
        revalidated = client.simulate_get(path, headers={"If-None-Match": bare.headers["etag"]})
        assert revalidated.status_code == 304 and not revalidated.content
    assert client.simulate_head("/static/app.css").status_code == 200


def test_assets_are_gzipped_for_clients_that_accept_it(shop):
    client, _ = shop
    plain = client.simulate_get("/static/app.js")
    zipped = client.simulate_get("/static/app.js", headers={"Accept-Encoding": "gzip, br"})
    refused = client.simulate_get("/static/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert zipped.headers["content-encoding"] == "gzip" and len(zipped.content) < len(plain.content)
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert zipped.headers["vary"] == "Accept-Encoding" and zipped.headers["etag"] != plain.headers["etag"]
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2f..%2fpyproject.toml", "/static/vendor/x.js",
                                  "/static/index.html", "/static/vendor/..%2fapp.js", "/static/"])
def test_only_known_assets_are_served(shop, path):
    client, _ = shop
    reply = client.simulate_get(path)
    assert reply.status_code == 404 and reply.json["error"]["code"] == "not_found"


def test_the_page_carries_the_server_clock(shop):
    client, _ = shop
    before = now_ms()
    text = client.simulate_get("/").text
    stamp = int(re.search(r'<meta name="server-time" content="(\d+)">', text).group(1))
    assert before <= stamp <= now_ms()


def test_the_order_page_is_the_page_for_a_known_order_and_a_404_page_otherwise(shop):
    client, engine = shop
    drop_id = engine.create_drop(slug="order-page", name="Order page", price=1000, total_stock=2)
    order = buy(client, drop_id, {"user_id": "alice"}).json
    found = client.simulate_get(f"/orders/{order['public_ref']}", query_string="code=00&status=PAID&cancel=false")
    assert found.status_code == 200 and found.headers["cache-control"] == "no-cache"
    assert found.headers["content-type"].startswith("text/html") and 'x-data="page"' in found.text
    assert buyer_cookie(found)  # back from PayOS without a cookie (another browser): one is issued
    for ref in ("a" * 26, order["public_ref"][:-1] + "x", "x" * 5000, "%C3%A9t%C3%A9", "%2e%2e", "%00"):
        missing = client.simulate_get(f"/orders/{ref}")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html"), ref
    assert client.simulate_head(f"/orders/{order['public_ref']}").status_code == 200
    assert client.simulate_post(f"/orders/{order['public_ref']}").status_code == 405


def test_without_vendor_assets_the_page_still_answers(tmp_path):
    (tmp_path / "index.html").write_text('<script src="/static/app.js"></script><meta content="0000000000000">')
    (tmp_path / "app.js").write_text("'use strict';")
    site = Site(tmp_path)
    assert set(site.assets) == {"app.js"}
    assert site.url("app.js") in site.template and "/static/vendor" not in site.template


def test_the_icon_is_served_where_browsers_look_for_it(shop):
    client, _ = shop
    icon = (REPO / "static" / "favicon.ico").read_bytes()
    assert '<link rel="icon" href="/favicon.ico">' in client.simulate_get("/").text
    reply = client.simulate_get("/favicon.ico")
    assert (reply.status_code, reply.headers["content-type"], reply.content) == (200, "image/x-icon", icon)
    assert reply.headers["cache-control"] == "no-cache"
    again = client.simulate_get("/favicon.ico", headers={"If-None-Match": reply.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert client.simulate_head("/favicon.ico").status_code == 200
    assert client.simulate_get("/static/favicon.ico").content == icon


def png_pixels(image: bytes) -> tuple[int, bytes]:
    """(side, RGBA rows) of a square 8-bit RGBA PNG whose rows are unfiltered, as deploy/make_favicon.py writes."""
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, at = {}, 8
    while at < len(image):
        (length,), kind = struct.unpack(">I", image[at:at + 4]), image[at + 4:at + 8]
        data = image[at + 8:at + 8 + length]
        assert struct.unpack(">I", image[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        at += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, depth, color) == (height, 8, 6)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + width * 4
    assert all(raw[row * stride] == 0 for row in range(height))
    return width, b"".join(raw[row * stride + 1:(row + 1) * stride] for row in range(height))


def test_the_committed_icon_is_what_its_script_draws():
    spec = importlib.util.spec_from_file_location("make_favicon", REPO / "deploy" / "make_favicon.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    icon = (REPO / "static" / "favicon.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", icon[:6])
    assert (reserved, kind, count) == (0, 1, len(script.SIZES))
    for n, size in enumerate(script.SIZES):
        width, height, _, _, planes, bits, length, offset = struct.unpack("<BBBBHHII", icon[6 + 16 * n:22 + 16 * n])
        assert (width, height, planes, bits) == (size, size, 1, 32)
        assert png_pixels(icon[offset:offset + length]) == (size, script.draw(size))
    pixels = script.draw(16)
    middle = (8 * 16 + 8) * 4
    assert pixels[3] == 0 and pixels[middle:middle + 4] == b"\xff" * 4  # a clear corner, the drop white


def test_the_page_is_found_in_the_package_first_then_at_the_checkouts_top(tmp_path, monkeypatch):
    """DROPSVC_STATIC_DIR, else dropsvc/static/ (a wheel carries it), else static/ beside the package."""
    assert Site().static_dir == REPO / "static"
    assert not (REPO / "dropsvc" / "static").exists(), "the build must never copy the page into the checkout"
    package = tmp_path / "site-packages" / "dropsvc"
    (package / "static").mkdir(parents=True)
    (package / "static" / "index.html").write_text("<p>from the wheel</p>")
    installed = importlib.resources.files
    monkeypatch.setattr(importlib.resources, "files",
                        lambda anchor: package if anchor == "dropsvc" else installed(anchor))
    assert Site().static_dir == package / "static"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("<p>from DROPSVC_STATIC_DIR</p>")
    with Engine(tmp_path / "found.db", readers=1) as engine:
        for env, text in (({}, "from the wheel"), ({"DROPSVC_STATIC_DIR": str(elsewhere)}, "from DROPSVC_STATIC_DIR")):
            assert text in testing.TestClient(create_app(engine, Config.load(env))).simulate_get("/").text
    (package / "static" / "index.html").unlink()  # a package without the page: the checkout's
    assert Site().static_dir == REPO / "static"


# -- the same over real HTTP, on every server -----------------------------------------------------------------------

def test_cookie_and_cache_headers_over_every_server(api):
    page = api.get("/")
    cookie = SimpleCookie(page.headers["set-cookie"])[COOKIE_NAME].value
    assert page.status == 200 and page.headers["cache-control"] == "no-cache"
    script = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page.body.decode()).group(1)
    assert api.get(script).headers["cache-control"] == YEAR
    drop = api.create_drop(per_user_limit=1)
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}", "Content-Type": "application/json"}
    first = exchange(api.conn, "POST", f"/api/drops/{drop['id']}/purchases", b'{"user_id": "x"}', headers)
    second = exchange(api.conn, "POST", f"/api/drops/{drop['id']}/purchases", b'{"user_id": "y"}', headers)
    assert first.status == 201 and first.json["user_id"].startswith(USER_ID_PREFIX)
    assert second.status == 409 and second.error_code == "per_user_limit"
    assert api.get("/orders/" + "b" * 26).status == 404
    gzipped = api.get(script, headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip" and gzip.decompress(gzipped.body).startswith(b"//")
