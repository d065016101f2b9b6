"""What every image has, as in repo2docker's default environment (#21): Node.js 20 or newer with
npm and npx, global npm installs as the notebook user, ipywidgets, the memory indicator showing
the session's limit, the server proxy and nbgitpuller, and no JupyterLab news prompt."""

from __future__ import annotations

import json

from ..support.jupyter import api
from .conftest import launch
from .test_lifecycle import NOTEBOOK


def test_node_20_and_global_npm_installs_as_the_notebook_user(builder, git_server):
    git_server.create("base/npm", {
        "postBuild": "#!/bin/bash\nset -e\nnpm install --global is-number@7.0.0\n",
        "index.ipynb": NOTEBOOK})  # fmt: skip
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
    names = {package["name"].lower() for package in json.loads(listed)}
    assert {"ipywidgets", "jupyter-resource-usage", "jupyter-server-proxy",
            "nbgitpuller"} <= names  # fmt: skip
    page_config = json.loads(builder.run(image, "cat /etc/jupyter/labconfig/page_config.json"))
    assert page_config["disabledExtensions"]["@jupyterlab/apputils-extension:announcements"]
    serve = serve_with(session_memory_limit="768M", session_memory_reservation="512M")
    ready = launch(serve, "gh/base/env/HEAD")
    status, metrics = api(ready, "api/metrics/v1")
    assert status == 200, status
    assert metrics["limits"]["memory"]["rss"] == 768 * 2**20  # shown against the real limit
