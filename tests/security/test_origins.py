"""Session content never runs where it could act as the operator: in a real browser, an
operator signed in to /admin opens a hostile session page, which tries what the review's probe
did (read /admin, export the launch log, stop a session)."""

from __future__ import annotations

import json

from minibinder.store import Store

from ..support.browser import chromium
from ..support.serving import ServeProcess, write_config
from ..support.session_backends import SessionBackend
from .conftest import ADMIN_TOKEN

SESSION = "5e55105e55105e55"


def test_a_hostile_session_page_cannot_reach_the_operators_pages(tmp_path, docker):
    data = tmp_path / "data"
    backend = SessionBackend(data, SESSION, "hostile")
    backend.add_route(Store(data / "minibinder.sqlite"))
    config = write_config(
        tmp_path / "minibinder.toml",
        data,
        admin_token=ADMIN_TOKEN,
        idle_timeout=86400,
        cull_interval=3600,
    )
    serve = ServeProcess(config, tmp_path / "serve.log").start()
    try:
        with chromium(tmp_path / "profile") as browser:
            page = browser.new_page()
            page.goto(f"{serve.admin_url}/admin?token={ADMIN_TOKEN}")  # the operator signs in
            assert "Sessions" in page.content()
            page.goto(f"{serve.url}/user/{SESSION}/hostile.html?admin={serve.admin_url}")
            page.wait_for_function("document.getElementById('out').textContent.length > 0")
            outcome = json.loads(page.locator("#out").text_content())
        # The forged stop reached the operator's listener, which refused it: still running.
        assert Store(data / "minibinder.sqlite").get_session(SESSION) is not None
        assert (
            '"POST /admin/sessions/' + SESSION + '/stop HTTP/1.1" 400' in serve.log_file.read_text()
        )
    finally:
        serve.stop()
        backend.remove()
    # Beside the session, /admin does not exist; on its own origin, the browser lets the page
    # read nothing, and a forged form is refused for want of the CSRF value.
    assert outcome["same-origin admin"].startswith("404 ")
    assert outcome["same-origin export"].startswith("404 ")
    assert outcome["admin origin"].startswith("blocked")
    assert outcome["admin export"].startswith("blocked")
    assert outcome["admin stop"].startswith("blocked")
    assert ADMIN_TOKEN not in json.dumps(outcome)
