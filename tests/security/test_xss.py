"""Hostile text shown on minibinder's own pages never runs as script, in a real browser: in a
build log (the launch page and the operator's build log page), in specs and refs (launch page,
error page, home form, the operator's launch table). Every payload would log XSS-RAN to the
console or open a dialog if it ran; the browser records both across every navigation."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ..support.browser import chromium
from .conftest import ADMIN_TOKEN, wait_for

PAYLOADS = [
    "<img src=x onerror=\"console.log('XSS-RAN')\">",
    "<script>console.log('XSS-RAN')</script>",
    "\"><svg onload=console.log('XSS-RAN')>",
    "'><iframe srcdoc=\"<script>parent.console.log('XSS-RAN')</script>\">",
    "javascript:console.log('XSS-RAN')",
]
# Git allows these in a branch name (no spaces): a ref a launch link may name.
HOSTILE_REF = 'x"><svg/onload=alert(1)>'


def watch(page, seen: list[str]) -> None:
    page.on("console", lambda message: seen.append(message.text))
    page.on("dialog", lambda dialog: (seen.append(f"dialog {dialog.message}"), dialog.dismiss()))


def test_hostile_text_never_runs_on_minibinders_pages(tmp_path, serve_with, git_server):
    repo = git_server.create(
        "sec/xss-log",
        {
            "payloads.txt": "\n".join(PAYLOADS) + "\n",
            "postBuild": "#!/bin/bash\ncat payloads.txt\n",
        },
        executable=("postBuild",),
    )
    repo.commit({}, "a branch with a hostile name")
    serve = serve_with()
    seen: list[str] = []
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        watch(page, seen)
        # The launch page streams the build log, postBuild's output among it, then the session.
        page.goto(f"{serve.url}/v2/gh/sec/xss-log/HEAD")
        page.wait_for_url("**/user/**", timeout=300_000)
        for payload in PAYLOADS:  # as a spec and as a ref, on the launch and the error pages
            for path in (
                f"/v2/gh/{quote(payload, safe='')}/repo/HEAD",
                f"/v2/gh/sec/xss-log/{quote(payload, safe='')}",
                f"/v2/gh/sec/xss-log/{quote(HOSTILE_REF, safe='')}",
            ):
                page.goto(serve.url + path)
                page.wait_for_timeout(300)
            # The home form, given hostile values.
            form = {"provider": "gh", "repo": payload, "ref": payload, "path": payload}
            page.goto(f"{serve.url}/?{urlencode(form)}")
            page.wait_for_timeout(200)
        # The operator's pages list the launches (hostile specs among them) and the build log.
        page.goto(f"{serve.admin_url}/admin?token={ADMIN_TOKEN}")
        assert "sec/xss-log" in page.content()
        build_log = page.locator("a[href*='/admin/builds/']").first
        build_log.click()
        wait_for(lambda: "onerror" in page.content(), 30, message="the build log page")
        assert "&lt;img src=x onerror=" in page.content()  # shown as text
    assert not [text for text in seen if "XSS-RAN" in text or text.startswith("dialog")], seen
