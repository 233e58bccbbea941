"""Browser tests: Playwright's sync API driving Debian's Chromium against a real ``dropsvc serve``.

- ``shop``: a service on a free port wired to a PayOS sandbox (both on loopback),
  as in tests/integration/payments_env.py; stopped at the end of the test.
- ``browser``: a fresh headless Chromium (new user data dir: no cookies, no cache)
  whose every request is recorded (``browser.requests``), and every console error
  and uncaught exception (``browser.console_errors``).
- ``shots``: saves desktop (1280 px) and phone (375 px) screenshots of a state in
  tests/browser/screenshots/ (gitignored) to look at.

Never ``playwright install``: the browser is /usr/bin/chromium (``make test`` installs it with apt).
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from live_server import assert_no_unhandled_errors  # noqa: E402
from page_helpers import DESKTOP, PHONE  # noqa: E402
from payments_env import Shop, open_shop  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    opened = open_shop(tmp_path)
    yield opened
    opened.api.close()
    status = opened.server.stop()
    opened.sandbox.stop()
    assert_no_unhandled_errors(opened.server)
    assert status == 0, opened.server.log()


@dataclass
class Browser:
    """One Chromium context and its first page; what it asked for is in ``requests``, what went wrong in
    ``console_errors`` (a failed load, a 4xx fetch, an uncaught exception)."""

    context: object
    page: object
    requests: list = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def on_console(self, message: object) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def hosts(self) -> set[str]:
        """Every scheme://host:port the page asked for (data: and about: URLs aside)."""
        seen = set()
        for request in self.requests:
            url = urllib.parse.urlsplit(request.url)
            if url.scheme in ("http", "https", "ws", "wss"):
                seen.add(f"{url.scheme}://{url.netloc}")
        return seen


@pytest.fixture(scope="session")
def playwright() -> Iterator[object]:
    if not CHROMIUM.exists():  # fail, not skip: a suite that silently drops its browser tests proves nothing
        pytest.fail(f"no {CHROMIUM}: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as running:
        yield running


@pytest.fixture
def browser(playwright: object, tmp_path: Path) -> Iterator[Browser]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport=DESKTOP, locale="en-US", timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
    context.set_default_timeout(10_000)
    opened = Browser(context, context.pages[0] if context.pages else context.new_page())
    context.on("request", lambda request: opened.requests.append(request))
    context.on("console", opened.on_console)
    context.on("weberror", lambda error: opened.console_errors.append(f"uncaught: {error.error}"))
    yield opened
    context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest):
    """``shots(page, "state")``: tests/browser/screenshots/<test>-<state>-{desktop,phone}.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test_name = request.node.name.removeprefix("test_")

    def take(page: object, state: str, sizes: tuple[str, ...] = ("desktop", "phone")) -> list[Path]:
        saved = []
        size = page.viewport_size
        for label in sizes:
            page.set_viewport_size(VIEWPORTS[label])
            path = SCREENSHOTS / f"{test_name}-{state}-{label}.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            saved.append(path)
        page.set_viewport_size(size)
        return saved

    return take

