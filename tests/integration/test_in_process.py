"""What cannot be provoked from outside: the 500 and 503 paths, config and log details.

In process, through falcon.testing (part of falcon: no extra dependency).
"""

from __future__ import annotations

import io
import json

import pytest
from falcon import testing

from dropsvc import Engine
from dropsvc.config import Config, ConfigError
from dropsvc.http.app import create_app
from dropsvc.logs import configure

SECRET = "s3cret-admin-token-value"


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    yield stream, configure("DEBUG", [SECRET], stream=stream)
    configure("INFO")


@pytest.fixture
def app_and_engine(tmp_path):
    engine = Engine(tmp_path / "app.db", readers=1)
    app = create_app(engine, Config.load({}, admin_token=SECRET))
    yield app, engine
    engine.close()


def test_a_bug_is_a_logged_500_in_the_envelope(app_and_engine, log_stream):
    app, _ = app_and_engine
    stream, _ = log_stream

    class Broken:
        def on_get(self, req, resp):
            raise RuntimeError(f"bug while holding {SECRET}")

    app.add_route("/broken", Broken())
    reply = testing.TestClient(app).simulate_get("/broken")
    assert reply.status_code == 500
    assert reply.json == {"error": {"code": "internal_error", "message": "internal error"}}
    logged = [json.loads(text) for text in stream.getvalue().splitlines()]
    [line] = [entry for entry in logged if entry["event"] != "access"]  # + the request's access line
    assert [entry["fields"]["status"] for entry in logged if entry["event"] == "access"] == [500]
    assert (line["level"], line["event"]) == ("error", "unhandled_error")
    assert line["fields"] == {"method": "GET", "path": "/broken", "error": "RuntimeError"}
    assert "RuntimeError" in line["error"] and SECRET not in stream.getvalue()


def test_a_closed_engine_is_503_with_retry_after(app_and_engine):
    app, engine = app_and_engine
    drop_id = engine.create_drop(slug="closing", name="Closing", price=1, total_stock=1)
    engine.close()
    client = testing.TestClient(app)
    for reply in (client.simulate_get(f"/api/drops/{drop_id}"),
                  client.simulate_post(f"/api/drops/{drop_id}/purchases", json={"user_id": "u"})):
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "1"
        assert reply.json["error"]["code"] == "storage_unavailable"


def test_log_fields_with_secret_names_are_redacted(log_stream):
    stream, log = log_stream
    log.info("event", api_key="abc123456", authorization="Bearer xyz", token_set=True, plain="visible")
    fields = json.loads(stream.getvalue())["fields"]
    assert fields == {"api_key": "[redacted]", "authorization": "[redacted]", "token_set": True,
                      "plain": "visible"}


def test_config_defaults():
    config = Config.load({})
    assert (config.db, config.host, config.port, config.workers) == ("./dropsvc.db", "127.0.0.1", 8000, 1)
    assert (config.synchronous, config.log_level, config.readers) == ("NORMAL", "INFO", 4)
    assert config.admin_token is None and config.payos_base_url is None
    assert config.public_url == "http://127.0.0.1:8000"
    assert config.payos_return_url == "http://127.0.0.1:8000/orders/{public_ref}"


def test_default_server_follows_durability():
    """The benchmark's pick: bjoern in NORMAL, granian (group commit across threads) in FULL."""
    assert Config.load({}).server == "bjoern"
    assert Config.load({"DROPSVC_SYNCHRONOUS": "FULL"}).server == "granian"
    assert Config.load({"DROPSVC_SYNCHRONOUS": "FULL", "DROPSVC_SERVER": "bjoern"}).server == "bjoern"
    assert Config.load({}, synchronous="FULL", server="meinheld").server == "meinheld"


def test_flags_override_the_environment():
    env = {"DROPSVC_PORT": "9000", "DROPSVC_HOST": "0.0.0.0", "DROPSVC_SYNCHRONOUS": "full",
           "DROPSVC_ADMIN_TOKEN": SECRET, "PAYOS_API_KEY": "payos-key-1234", "DROPSVC_DB": ""}
    config = Config.load(env, port="9100", db=None)
    assert (config.port, config.host, config.synchronous) == (9100, "0.0.0.0", "FULL")
    assert config.db == "./dropsvc.db"  # empty and None both mean "not given"
    assert config.public_url == "http://0.0.0.0:9100"
    assert SECRET not in repr(config) and "payos-key-1234" not in repr(config)
    assert set(config.secrets) == {SECRET, "payos-key-1234"}


def test_public_url_sets_the_payos_defaults():
    config = Config.load({"DROPSVC_PUBLIC_URL": "https://shop.example/", "PAYOS_CANCEL_URL": "https://x.example/c"})
    assert config.public_url == "https://shop.example"
    assert config.payos_return_url == "https://shop.example/orders/{public_ref}"
    assert config.payos_cancel_url == "https://x.example/c"


@pytest.mark.parametrize(("env", "flags", "message"), [
    ({"DROPSVC_PORT": "0"}, {}, "DROPSVC_PORT must be an integer from 1 to 65535, got '0'"),
    ({"DROPSVC_PORT": "８０"}, {}, "DROPSVC_PORT must be an integer from 1 to 65535, got '８０'"),
    ({"DROPSVC_READERS": "9" * 5000}, {}, f"DROPSVC_READERS must be an integer from 1 to 64, got '{'9' * 40}'..."),
    ({}, {"workers": "many"}, "--workers must be an integer from 1 to 64, got 'many'"),
    ({"DROPSVC_SYNCHRONOUS": "OFF"}, {}, "DROPSVC_SYNCHRONOUS must be one of NORMAL, FULL, got 'OFF'"),
    ({"DROPSVC_HOST": " "}, {}, "DROPSVC_HOST must not be empty"),
    ({"DROPSVC_ADMIN_TOKEN": "has space"}, {}, "DROPSVC_ADMIN_TOKEN must be printable ASCII without spaces"),
    ({"DROPSVC_REPLICATE": "ftp://x/y"}, {}, "DROPSVC_REPLICATE must be a Litestream replica URL "
                                             "(file://, s3://, gs://...), got 'ftp://x/y'"),
    ({"DROPSVC_REPLICATE_SYNC_INTERVAL": "10ms"}, {},
     "DROPSVC_REPLICATE_SYNC_INTERVAL must be a duration from 50ms to 60m (e.g. 250ms, 1s), got '10ms'"),
    ({"DROPSVC_REPLICATE_SYNC_INTERVAL": "1s"}, {"replicate_sync_interval": "1h"},
     "--replicate-sync-interval must be a duration from 50ms to 60m (e.g. 250ms, 1s), got '1h'"),
])
def test_bad_config_messages(env, flags, message):
    with pytest.raises(ConfigError) as raised:
        Config.load(env, **flags)
    assert str(raised.value) == message


def test_replication_settings():
    assert Config.load({}).replicate is None
    config = Config.load({"DROPSVC_REPLICATE": " s3://bucket/db ", "DROPSVC_REPLICATE_SYNC_INTERVAL": "250ms"})
    assert (config.replicate, config.replicate_sync_interval) == ("s3://bucket/db", 0.25)
    flagged = Config.load({"DROPSVC_REPLICATE": "s3://bucket/db"}, replicate="file:///r", replicate_sync_interval="2m")
    assert (flagged.replicate, flagged.replicate_sync_interval) == ("file:///r", 120.0)
    assert Config.load(flagged.to_env()) == flagged  # what worker processes read back


def test_static_dir_setting_serves_the_page_from_elsewhere(tmp_path):
    """DROPSVC_STATIC_DIR: the page's files from elsewhere, whatever the package carries."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>elsewhere</title><p>from DROPSVC_STATIC_DIR</p>")
    config = Config.load({"DROPSVC_STATIC_DIR": str(site)})
    assert config.static_dir == str(site)
    with Engine(tmp_path / "static.db") as engine:
        client = testing.TestClient(create_app(engine, config))
        page = client.simulate_get("/")
        assert page.status_code == 200 and "from DROPSVC_STATIC_DIR" in page.text


def test_a_gateway_that_answers_nonsense_is_a_502(tmp_path, log_stream):
    """A 2xx from "PayOS" that is no PayOS envelope: 502 payment_gateway_error, the order still reserved."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from dropsvc.checkout import Checkout
    from dropsvc.payments import PayOSClient

    class NotPayOS(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "16")
            self.end_headers()
            self.wfile.write(b"<html>hi</html>\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotPayOS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    engine = Engine(tmp_path / "gateway.db", readers=1)
    try:
        config = Config.load({})
        client = PayOSClient(f"http://127.0.0.1:{server.server_address[1]}", "id", "key", "checksum", retries=0)
        client_app = testing.TestClient(create_app(engine, config, Checkout(engine, config, client)))
        drop_id = engine.create_drop(slug="g", name="G", price=1000, total_stock=1)
        order = engine.purchase(drop_id, "gus").order
        reply = client_app.simulate_post(f"/api/orders/{order['public_ref']}/checkout")
        assert reply.status_code == 502 and reply.json["error"]["code"] == "payment_gateway_error"
        assert engine.get_order(order["public_ref"])["status"] == "reserved"
        assert engine.get_order(order["public_ref"])["checkout_url"] is None
        assert "payment_gateway_error" in log_stream[0].getvalue()
    finally:
        engine.close()
        server.shutdown()
        server.server_close()
