"""Debian's Chromium driven by Playwright (never a browser of Playwright's own)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Without the background-networking flags, Chromium keeps trying to reach Google's hosts.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip


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
        try:
            yield context
        finally:
            context.close()


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
