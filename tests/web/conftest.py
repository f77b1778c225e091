"""Browser tests of the web page: a real `fathom serve` with the packaged model, driven by the
system's headless Chromium through Playwright (never `playwright install`: no browser download).

Without Chromium or Playwright these tests skip with the reason; under CI=true they fail.
Set FATHOM_WEB_SCREENSHOTS=1 to write the README's screenshots into docs/img/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fathom import Fathom
from tests.service.server import ServerProcess

CHROMIUM = Path(os.environ.get("FATHOM_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "img"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


PAGE_ERRORS: list[str] = []


@pytest.fixture(autouse=True)
def no_page_errors() -> Iterator[None]:
    """Every browser test fails when a script of the page threw an uncaught error."""
    PAGE_ERRORS.clear()
    yield
    assert PAGE_ERRORS == [], PAGE_ERRORS


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@dataclass
class Site:
    """A running `fathom serve` and keys made for it before it started."""

    server: ServerProcess
    keys: dict[str, str]
    seeded: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def upload(self, key: str, **body: Any) -> dict[str, Any]:
        """Upload through the API (not the page) and wait for the job to succeed."""
        headers = {"Authorization": f"Bearer {key}"}
        accepted = httpx.post(f"{self.url}/v1/documents", json=body, headers=headers, timeout=30)
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = httpx.get(f"{self.url}/v1/jobs/{accepted.json()['job_id']}", headers=headers).json()
            if job["status"] == "succeeded":
                return dict(accepted.json())
            assert job["status"] != "failed", job
            time.sleep(0.2)
        raise AssertionError("upload job did not finish")


def start_site(home: Path, keys: dict[str, dict[str, Any]], env: dict[str, str]) -> Site:
    """Create the keys in a fresh home, then start `fathom serve` over it (the real model)."""
    made: dict[str, str] = {}
    with Fathom(home=home) as fathom:  # the embedder loads lazily: creating keys needs no model
        for name, spec in keys.items():
            made[name], _ = fathom.keys.create(**spec)
    server = ServerProcess(home, {"FATHOM_LOG_LEVEL": "WARNING", **env})
    try:
        server.wait_ready(timeout=180)
    except BaseException:
        server.stop()
        raise
    return Site(server, made)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The default service: extractive answers, no request rate limit (the page polls jobs)."""
    home = tmp_path_factory.mktemp("web") / "home"
    keys = {
        "admin": {"tenant": "acme", "user": "alice", "admin": True},
        "reader": {"tenant": "acme", "user": "bob"},
        "globex": {"tenant": "globex", "user": "alice", "admin": True},
    }
    running = start_site(home, keys, {"FATHOM_RATE_LIMIT_PER_MINUTE": "0"})
    yield running
    running.server.stop()


def open_page(browser: Any, url: str, key: str | None, viewport: dict[str, int] = DESKTOP) -> Any:
    """A fresh browser context (own session storage) on the page, with ``key`` entered."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
    page.goto(url + "/")
    if key is not None:
        page.get_by_label("Your fathom API key").fill(key)
        page.get_by_role("button", name="Use this key").click()
    return page


def latest(page: Any, part: str = "answer-body") -> Any:
    """A part of the thread's last turn: ``answer-body``, ``answer-meta``, ``answer-sources``, ..."""
    return page.locator("#thread .turn").last.locator(f".{part}")


def screenshot(page: Any, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
    """A PNG of the page (into docs/img/ when FATHOM_WEB_SCREENSHOTS=1, else the test's tmp dir)."""
    folder = SCREENSHOTS if os.environ.get("FATHOM_WEB_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path
