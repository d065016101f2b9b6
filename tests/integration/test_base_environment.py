"""What every image has, as in repo2docker's default environment (#21): Node.js 20 or newer with
npm and npx, global npm installs as the notebook user, ipywidgets, the memory indicator showing
the session's limit, the server proxy and nbgitpuller (a workshop's link pulling its content from
a git server on the lab's network), and no JupyterLab news prompt."""

from __future__ import annotations

import json
import re
import secrets
import time
from urllib.parse import urlencode

from ..support.jupyter import api
from .conftest import launch
from .test_lifecycle import NOTEBOOK


def test_node_20_and_global_npm_installs_as_the_notebook_user(builder, git_server):
    git_server.create(
        "base/npm",
        {
            "postBuild": "#!/bin/bash\nset -e\nnpm install --global is-number@7.0.0\n",
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/base/npm/HEAD")
    assert builder.run(image, "node --version").startswith("v2")
    assert int(builder.run(image, "node --version")[1:].split(".")[0]) >= 20
    assert builder.run(image, "npx --version") == builder.run(image, "npm --version")
    assert builder.run(image, "ls $(npm root --global)") == "is-number"
    assert builder.run(image, "stat -c %u $(npm prefix --global)") == "1000"


def test_the_default_environment_and_the_memory_indicator(serve_with, builder, git_server):
    git_server.create("base/env", {"index.ipynb": NOTEBOOK})
    image, _ = builder.built("gh/base/env/HEAD")
    listed = builder.run(image, "pip list --format=json")
    # As PEP 503 normalises them: jupyter_server_proxy 4.6 calls itself with underscores.
    names = {re.sub(r"[-_.]+", "-", package["name"]).lower() for package in json.loads(listed)}
    assert {"ipywidgets", "jupyter-resource-usage", "jupyter-server-proxy", "nbgitpuller"} <= names
    page_config = json.loads(builder.run(image, "cat /etc/jupyter/labconfig/page_config.json"))
    assert page_config["disabledExtensions"]["@jupyterlab/apputils-extension:announcements"]
    serve = serve_with(session_memory_limit="768M", session_memory_reservation="512M")
    ready = launch(serve, "gh/base/env/HEAD")
    status, metrics = api(ready, "api/metrics/v1")
    assert status == 200, status
    assert metrics["limits"]["memory"]["rss"] == 768 * 2**20  # shown against the real limit


def test_an_nbgitpuller_link_lands_on_the_pulled_notebook(serve_with, git_server, tmp_path):
    """The environment in one repository, the workshop's content in another, on a git server
    the operator lets sessions reach (egress_allow): the link pulls it and opens its notebook."""
    from ..support.browser import chromium
    from ..support.private_git import ADDRESS, PrivateGitServer

    intro = json.dumps(
        {
            "cells": [
                {
                    "cell_type": "markdown",
                    "id": "a1",
                    "metadata": {},
                    "source": "# Pulled by nbgitpuller",
                }
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    git_server.create("base/puller-env", {"index.ipynb": NOTEBOOK})
    git_server.create("content/workshop", {"intro.ipynb": intro, "data/rows.csv": "a,b\n1,2\n"})
    # A sessions' network of the test's own: on a shared one, other test installations' rules
    # (which do not allow this address) would refuse it first.
    network = f"mbtest-sessions-{secrets.token_hex(3)}"
    with PrivateGitServer(git_server.root) as content:
        serve = serve_with(egress_allow=[ADDRESS], session_network=network)
        pull = "git-pull?" + urlencode(
            {
                "repo": content.url("content/workshop"),
                "branch": "main",
                "urlpath": "lab/tree/workshop/intro.ipynb",
            }
        )
        with chromium(tmp_path / "profile") as browser:
            page = browser.new_page()
            page.goto(f"{serve.url}/v2/gh/base/puller-env/HEAD?{urlencode({'urlpath': pull})}")
            landed(page, "/lab/tree/workshop/intro.ipynb")
            session = page.url.split("lab/tree/", 1)[0]
            pulled = page.request.get(f"{session}api/contents/workshop/intro.ipynb")
            assert pulled.status == 200, pulled.status
            assert pulled.json()["content"]["cells"][0]["source"] == "# Pulled by nbgitpuller"
            listed = page.request.get(f"{session}api/contents/workshop/data")
            assert [item["name"] for item in listed.json()["content"]] == ["rows.csv"]


def landed(page, path: str, timeout: float = 600) -> None:
    """Wait until the browser is at `path`; a launch page that says the launch failed ends the
    wait at once, with what it says."""
    deadline = time.monotonic() + timeout
    while path not in page.url:
        assert time.monotonic() < deadline, f"not at {path} after {timeout} s: {page.url}"
        if "/v2/" in page.url:
            try:
                failure = page.evaluate(
                    "() => { const f = document.getElementById('failure');"
                    " return f && !f.hidden ? f.textContent : ''; }"
                )
            except Exception:  # the page is navigating away: to the session, we hope
                failure = ""
            assert not failure, f"the launch failed: {failure}"
        page.wait_for_timeout(500)
