"""Private repositories (#24): a git server on loopback that demands a login, minibinder's
git given the token through its credential helper, and everything minibinder wrote afterwards
searched for the token."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.parse
import urllib.request
from pathlib import Path

import docker as docker_sdk
import pytest

from ..support.githttp import GitHttpServer
from ..support.sse import events
from .conftest import ADMIN_TOKEN

TOKEN = "tok-" + secrets.token_hex(16)
LOGIN = ("lab-bot", TOKEN)


@pytest.fixture
def private_server(git_server):
    server = GitHttpServer(git_server.root, login=LOGIN)
    yield server
    server.close()


def credentials_file(folder: Path, server: GitHttpServer) -> Path:
    path = folder / "git-credentials.toml"
    path.write_text(
        f'["http://127.0.0.1:{server.port}/lab"]\nusername = "{LOGIN[0]}"\ntoken = "{TOKEN}"\n'
    )
    path.chmod(0o600)
    return path


def spec_of(server: GitHttpServer, path: str) -> str:
    return "git/" + urllib.parse.quote(server.url(path), safe="") + "/HEAD"


def launch_as(serve, user: str, spec: str) -> list[dict]:
    opener = urllib.request.build_opener()
    opener.addheaders = [("X-Forwarded-User", user)]
    return events(f"{serve.url}/build/{spec}", opener=opener)


def files_under(root: Path):
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def test_a_private_repository_launches_with_the_servers_credentials_only(
    tmp_path, serve_with, git_server, private_server
):
    git_server.create("lab/secret", {"README.md": "private notes\n"})
    git_server.create("elsewhere/closed", {"README.md": "not ours\n"})
    secret_file = credentials_file(tmp_path, private_server)
    serve = serve_with(
        access="header",
        trusted_proxies=["127.0.0.1"],
        private_repo_users=["alice"],
        git_credentials=str(secret_file),
        allowed_clone_schemes=["https", "http"],
    )
    secret = spec_of(private_server, "lab/secret")

    ready = launch_as(serve, "alice", secret)[-1]
    assert ready["phase"] == "ready", ready
    assert any(given.startswith("Basic ") for given in private_server.authorizations)

    asked = len(private_server.authorizations)
    refused = launch_as(serve, "bob", secret)[-1]
    assert refused["phase"] == "failed" and "bob may not launch it here" in refused["message"]
    assert len(private_server.authorizations) == asked  # not even resolved for bob

    closed = launch_as(serve, "alice", spec_of(private_server, "elsewhere/closed"))[-1]
    assert closed["phase"] == "failed"
    assert "this repository needs credentials the server does not have" in closed["message"]

    export = urllib.request.Request(
        f"{serve.admin_url}/admin/launches.jsonl",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(export, timeout=30) as response:
        rows = [json.loads(line) for line in response.read().decode().splitlines()]
    assert [row["spec"] for row in rows if row["status"] == "success"] == ["private"]
    assert not any("secret" in json.dumps(row) for row in rows)

    # The public pages name no image of it.
    opener = urllib.request.build_opener()
    opener.addheaders = [("X-Forwarded-User", "alice")]
    for page in ("/", "/metrics", "/versions"):
        with opener.open(f"{serve.url}{page}", timeout=30) as response:
            shown = response.read().decode()
        assert "secret" not in shown and ready["image"].split(":")[0] not in shown, page

    # The token is nowhere minibinder wrote: its data directory, its log, the image, the
    # session's container.
    basic = base64.b64encode(f"{LOGIN[0]}:{TOKEN}".encode())
    for path in [*files_under(serve.data_dir), serve.log_file]:
        content = path.read_bytes()
        assert TOKEN.encode() not in content and basic not in content, path
    sdk = docker_sdk.from_env()
    image = sdk.images.get(ready["image"])
    assert TOKEN not in json.dumps(image.attrs)
    listed = sdk.containers.list(filters={"label": "minibinder.session"}, ignore_removed=True)
    for container in listed:  # ignore_removed: another run's session may go meanwhile
        if container.attrs["Config"]["Image"] == ready["image"]:
            assert TOKEN not in json.dumps(container.attrs)
    found = sdk.containers.run(
        ready["image"],
        ["sh", "-c", f"grep -rl {TOKEN} /home/jovyan /tmp; echo done"],
        remove=True,
        user="1000",
    )
    assert found.decode().strip() == "done"


def test_an_open_server_with_credentials_refuses_to_start(tmp_path, serve_with, private_server):
    secret_file = credentials_file(tmp_path, private_server)
    with pytest.raises(RuntimeError, match='with access = "open" anyone could launch'):
        serve_with(git_credentials=str(secret_file))
