"""The headless browser the HTML report's tests drive: the system's Chromium (Debian package
``chromium``) through Playwright's Python API, never a downloaded browser. Missing either is a
test failure that says how to install it (``make test`` installs both)."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = (
    "the HTML report's browser tests need the system Chromium and Playwright: "
    "`apt-get install -y chromium` (Debian; `make test` does it) and "
    "`pip install -r requirements-dev.txt`; or set MODELMETER_CHROMIUM to a Chromium binary"
)


def chromium_path() -> str:
    """The Chromium binary: $MODELMETER_CHROMIUM, else ``chromium`` or ``chromium-browser``
    on the PATH; a test failure saying how to install it when there is none."""
    env = os.environ.get("MODELMETER_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"no Chromium found: {INSTALL}", pytrace=False)


def launch(playwright_context):  # noqa: ANN001, ANN201 (Playwright's types)
    """A headless Chromium (no sandbox: CI runs as root)."""
    return playwright_context.chromium.launch(
        executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
    )


def sync_playwright():  # noqa: ANN201
    """Playwright's synchronous entry point (a test failure when it is not installed)."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        pytest.fail(f"Playwright is not installed: {INSTALL}", pytrace=False)
    return start()
