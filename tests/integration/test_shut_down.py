"""File → Shut Down in JupyterLab ends the session (#21): the server exits by itself with 0, the
engine does not start it again, and minibinder frees the seat, removes the container and says
`ended: shut down` in the launch log, within seconds. A server that crashes is started again
and the session goes on; an engine restart keeping sessions is tests/integration/
test_docker_restart.py."""

from __future__ import annotations

import docker as docker_sdk
import pytest

from minibinder.store import Store

from ..support.jupyter import api
from .conftest import launch, wait_for
from .test_lifecycle import NOTEBOOK, session_container


@pytest.fixture(scope="module")
def repo(git_server, builder):
    git_server.create("down/demo", {"index.ipynb": NOTEBOOK})
    builder.built("gh/down/demo/HEAD")
    return "gh/down/demo/HEAD"


def test_shut_down_ends_the_session_and_frees_its_seat(serve_with, repo):
    serve = serve_with(max_sessions_per_address=1, cull_interval=3600)
    ready = launch(serve, repo)
    container = session_container(ready)
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    assert api(ready, "api/shutdown", "POST", {})[0] in (200, 204)  # what File → Shut Down asks
    wait_for(lambda: api(ready, "api/status")[0] == 404, 15, message="the session to end")
    with pytest.raises(docker_sdk.errors.NotFound):
        docker_sdk.from_env().containers.get(container.id)
    store = Store(serve.data_dir / "minibinder.sqlite")
    assert store.get_session(session_id) is None
    ended = [row["ended"] for row in store.launches() if row["session"] == session_id]
    assert ended == ["shut down"]
    launch(serve, repo)  # the seat is free again (max_sessions_per_address = 1)


def test_a_crashed_server_is_started_again_and_the_session_goes_on(serve_with, repo):
    serve = serve_with(cull_interval=2)
    ready = launch(serve, repo)
    container = session_container(ready)
    kill_server = (
        "import os\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    if b'jupyter-lab' in open(f'/proc/{pid}/cmdline', 'rb').read(): os.kill(int(pid), 9)"
    )
    container.exec_run(["python3", "-c", kill_server], user="1000")
    wait_for(
        lambda: session_container(ready).attrs["RestartCount"] >= 1,
        30,
        message="the engine to start the server again",
    )
    wait_for(lambda: api(ready, "api/status")[0] == 200, 60, message="the session to answer")
