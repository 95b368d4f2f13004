"""Shared by the browser tests: headless Chromium from Debian's packages, driven by Playwright.

Playwright never downloads a browser here: it launches the executable named by
FEEDLOOP_TEST_CHROMIUM (scripts/test installs Debian's chromium and sets it), with a fresh profile
and no background networking, as the machine's closed network needs.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless Chromium context with a fresh user-data directory, closed on exit."""
    executable = os.environ.get("FEEDLOOP_TEST_CHROMIUM", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory(prefix="feedloop-chromium-") as profile:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 800},
            )
            try:
                yield context
            finally:
                context.close()


def screenshot_dir() -> str:
    """Where screenshots go: FEEDLOOP_SCREENSHOTS, else the repository's docs/screenshots."""
    default = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs", "screenshots")
    path = os.environ.get("FEEDLOOP_SCREENSHOTS", default)
    os.makedirs(path, exist_ok=True)
    return path
