"""End-to-end fixtures: a real daphne, real RQ worker processes and the recovery loop (from the integration
fixtures), Redis, the test database, and Chromium driven by Playwright.

The tests skip, saying why (and fail under ``CI=true``), when ``/usr/bin/chromium`` (Debian's ``chromium``
package) or the ``playwright`` package is missing. Playwright's own browser downloads are never used. Screenshots go to
``artifacts/screenshots/<name>.png``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.integration.conftest import (  # noqa: F401  (fixtures re-exported for the e2e tests)
    BASE_DIR,
    SIMPLE,
    Process,
    live,
    recovery_loop,
    start_workers,
    wait_for,
)

CHROMIUM = os.environ.get("WORKFLOWS_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = BASE_DIR / "artifacts" / "screenshots"
PASSWORD = "pw-e2e-12345"

# Records every change of a graph node's data-status (the run page's script sets it as events arrive), so a test
# can tell that a node went pending -> running -> succeeded while the page stayed loaded.
STATUS_RECORDER = """
window.__statusLog = {};
document.addEventListener("DOMContentLoaded", () => {
  for (const g of document.querySelectorAll("g.node")) window.__statusLog[g.dataset.step] = [g.dataset.status];
  new MutationObserver((records) => {
    for (const r of records) {
      if (!r.target.matches || !r.target.matches("g.node")) continue;
      (window.__statusLog[r.target.dataset.step] ??= []).push(r.target.dataset.status);
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
});
"""


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:
        return None


def start_daphne(processes, name: str, ready_path: str, ready_status: int, **env: str) -> str:
    """A daphne serving ``project.asgi`` on the test database and Redis (``env`` added to the workers'); its base
    URL once ``ready_path`` answers ``ready_status``. Listens on a socket bound first (``--fd``): no port race."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    log = processes.log_dir / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), "project.asgi:application"],
            cwd=BASE_DIR,
            env={**processes.env, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(sock.fileno(),),
        )
    sock.close()  # daphne holds its own copy
    proc = Process(name, popen, log)
    processes.started.append(proc)  # killed, and its log printed, with the workers
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if popen.poll() is not None:
            pytest.fail(f"{name} exited with {popen.returncode}:\n{proc.output()}")
        return _status(f"{url}{ready_path}") == ready_status

    wait_for(up, 90, 0.1, what=f"{name} to serve {ready_path}")  # generous: the box may be loaded
    return url


@pytest.fixture
def server(live) -> str:  # noqa: F811
    """A daphne serving the demo site; its base URL."""
    return start_daphne(live, "daphne", "/accounts/login/", 200)


@pytest.fixture
def browser(monkeypatch):
    """Chromium through Playwright, for one test (Playwright's event loop must not outlive the test: the
    Django ORM refuses to run in a thread with a running loop)."""
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    # the test's own ORM calls run while Playwright's loop is "running" on this thread (in a greenlet)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def new_page(browser, server):
    """``new_page(viewport=(1366, 900))``: a page in a fresh browser context, recording node status changes."""
    contexts, pages = [], []

    def make(viewport: tuple[int, int] = (1366, 900), **options):
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **options)
        context.set_default_timeout(15_000)
        context.add_init_script(STATUS_RECORDER)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        # the demo's Content-Security-Policy (project/csp.py) must not block anything the dashboard does
        page.on("console", lambda msg: "Content Security Policy" in msg.text and page.errors.append(msg.text))
        return page

    yield make
    blocked = [e for page in pages for e in page.errors if "Content Security Policy" in e]
    for context in contexts:
        context.close()
    assert not blocked, blocked


@pytest.fixture
def e2e_user(django_user_model):
    return django_user_model.objects.create_user("erin", password=PASSWORD)


@pytest.fixture
def e2e_admin(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def shot():
    """``shot(page, name)``: a full-page screenshot at artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
