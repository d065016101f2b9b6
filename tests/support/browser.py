"""Debian's Chromium driven by Playwright (never a browser of Playwright's own)."""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Without the background-networking flags, Chromium keeps trying to reach Google's hosts.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
# Chromium aborts a navigation in flight when the host's network interfaces change, as Docker's
# do whenever a container or network comes or goes (other tests' too): a reader would reload.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
NAVIGATION_TRIES = 3


@contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[Any]:
    """A headless browser context with its own profile, closed afterwards; `options` go to
    Playwright's launch_persistent_context (e.g. ignore_https_errors)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is required (scripts/ensure-test-tools.sh installs it)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=ARGS, **options
        )
        for page in context.pages:
            _reload_when_the_network_changed(page)
        open_page = context.new_page
        context.new_page = lambda: _reload_when_the_network_changed(open_page())
        try:
            yield context
        finally:
            context.close()


def _reload_when_the_network_changed(page: Any) -> Any:
    """Make `page.goto` try again (up to NAVIGATION_TRIES) when Chromium aborted it because
    the host's interfaces changed; any other failure is raised at once. Returns the page."""
    from playwright.sync_api import Error

    navigate = page.goto

    @functools.wraps(navigate)
    def goto(url: str, **options: Any) -> Any:
        for attempt in range(NAVIGATION_TRIES):
            try:
                return navigate(url, **options)
            except Error as error:
                if NETWORK_CHANGED not in str(error) or attempt == NAVIGATION_TRIES - 1:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    page.goto = goto
    return page


def run_cell(page: Any, cell: Any, check: Callable[[Any], None], code: str = "") -> None:
    """Run a JupyterLab cell (typing `code` into it first, once) until `check(output locator)`
    holds; a click or keypress can land while JupyterLab still lays out, so up to three tries."""
    editor = cell.locator(".jp-InputArea-editor")
    for attempt in range(3):
        editor.click()
        if code and code not in editor.inner_text():
            page.keyboard.type(code)
        page.keyboard.press("Shift+Enter")
        try:
            check(cell.locator(".jp-OutputArea-output"))
            return
        except AssertionError:
            if attempt == 2:
                raise
