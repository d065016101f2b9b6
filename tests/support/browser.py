"""Debian's Chromium driven by Playwright (never a browser of Playwright's own)."""

from __future__ import annotations

import functools
import re
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
NETWORK_CHANGED = "ERR_NETWORK_CHANGED"
NAVIGATION_TRIES = 3
ERROR_PAGE = "chrome-error://"  # where a navigation Chromium gave up on lands


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
    """Make the page's navigations try again (up to NAVIGATION_TRIES) where Chromium aborted
    them because the host's interfaces changed: `goto`, and a redirect awaited with
    `wait_for_url` (a launch page's to its session), as a reader would reload Chromium's error
    page. Any other failure is raised at once. Returns the page."""
    from playwright.sync_api import Error

    navigate, wait = page.goto, page.wait_for_url

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

    @functools.wraps(wait)
    def wait_for_url(url: Any, **options: Any) -> None:
        if not isinstance(url, str):
            return wait(url, **options)
        pattern = url_glob(url)
        for attempt in range(NAVIGATION_TRIES):
            wait(lambda at: bool(pattern.fullmatch(at)) or at.startswith(ERROR_PAGE), **options)
            if not page.url.startswith(ERROR_PAGE):
                return None
            shown = page.content()
            if NETWORK_CHANGED not in shown or attempt == NAVIGATION_TRIES - 1:
                raise AssertionError(f"the browser could not load the page: {shown[-2000:]}")
            page.reload()
        return None

    page.goto, page.wait_for_url = goto, wait_for_url
    return page


def url_glob(glob: str) -> re.Pattern[str]:
    """Playwright's URL glob as a pattern: `**` any characters, `*` any but `/`."""
    parts = (
        ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
        for part in re.split(r"(\*\*|\*)", glob)
    )
    return re.compile("".join(parts))


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
