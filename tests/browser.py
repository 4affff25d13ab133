"""A real browser for the dashboard's tests: Debian's chromium, driven by Playwright.

Playwright's own browser builds are never downloaded (`playwright install` is never run): the
chromium that `make browser` installs (scripts/setup-browser.sh) is launched by its path. A missing
chromium fails the test, never skips it, like a missing Docker engine does.

    browser = browser_fixture()          # in a test module: a chromium for the module's tests

    def test_page(browser):
        with serve(app) as base, open_page(browser) as (page, console):
            page.goto(base + "/#token=x")
            ...
            console.assert_clean()
"""

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Error, Page, sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
Scope = Literal["session", "package", "module", "class", "function"]
MISSING = "chromium is not on PATH: run `make browser` (scripts/setup-browser.sh installs Debian's chromium)."


def chromium_path() -> str:
    """The system's chromium; a test that needs it fails (never skips) when it is missing."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(MISSING, pytrace=False)
    return path


@contextlib.contextmanager
def launch() -> Iterator[Browser]:
    """A headless chromium, closed on exit."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def browser_fixture(scope: Scope = "module") -> Callable[..., Any]:
    """A pytest fixture giving one chromium to the tests of its scope: ``browser = browser_fixture()``."""

    @pytest.fixture(scope=scope)
    def browser() -> Iterator[Browser]:
        with launch() as launched:
            yield launched

    return browser


@dataclass
class Console:
    """What a page said that a test should hear: console errors and warnings, uncaught errors, dialogs."""

    messages: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            where = message.location.get("url", "")
            self.messages.append(f"console {message.type}: {message.text} ({where})")

    def on_page_error(self, error: Error) -> None:
        self.messages.append(f"uncaught: {error.message}")

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self, *expected: str) -> None:
        """No error, warning or dialog, but those containing one of ``expected`` (a test's own doing)."""
        said = [m for m in self.messages if not any(e in m for e in expected)]
        problems = said + [f"dialog {d}" for d in self.dialogs]
        assert not problems, "the page reported:\n" + "\n".join(problems)


@contextlib.contextmanager
def open_page(browser: Browser) -> Iterator[tuple[Page, Console]]:
    """A page in a fresh context (its own sessionStorage), with its console watched from the start."""
    context = browser.new_context()
    page = context.new_page()
    console = Console()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    page.on("dialog", console.on_dialog)
    try:
        yield page, console
    finally:
        context.close()


@contextlib.contextmanager
def serve(app: Any, startup_seconds: float = 10.0) -> Iterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_seconds
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port}", pytrace=False)
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_seconds)
        sock.close()
