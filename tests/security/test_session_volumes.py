"""A Dockerfile's `VOLUME` is no way around `session_disk_limit`: what a session writes into a
declared volume counts against the limit like its own layer, and the volume goes with the
session (also when its container was removed without it)."""

from __future__ import annotations

import contextlib
import urllib.request

import docker as docker_sdk
import pytest

from ..support.jupyter import api, execute, start_kernel
from .conftest import launch, wait_for

FILL = """
with open('/srv/data/fill', 'wb') as out:
    for _ in range({mib}):
        out.write(b'x' * 2**20)
print(open('/srv/data/seed').read().strip())
"""


@pytest.fixture(scope="module")
def volume_repo(git_server, build_config):
    base = build_config.base_images[build_config.default_python]
    git_server.create(
        "hostile/volume",
        {
            "Dockerfile": (
                f"FROM {base}\nUSER root\n"
                "RUN mkdir -p /srv/data && echo seeded > /srv/data/seed"
                " && chown -R 1000:1000 /srv/data\n"
                "VOLUME /srv/data\nUSER 1000\n"
            )
        },
    )
    return "gh/hostile/volume/HEAD"


@pytest.fixture
def volumes_removed():
    """Remove the volumes a test names once it is over, whatever became of its sessions (ask
    for it before `serve_with`: its containers go first)."""
    names: list[str] = []
    yield names.append
    client = docker_sdk.from_env()
    for name in names:
        with contextlib.suppress(docker_sdk.errors.NotFound):
            client.volumes.get(name).remove(force=True)


def session_of(ready) -> docker_sdk.models.containers.Container:
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    (found,) = docker_sdk.from_env().containers.list(
        all=True, filters={"label": f"minibinder.session={session_id}"}
    )
    return found


def volumes_of(container) -> list[str]:
    return [mount["Name"] for mount in container.attrs["Mounts"] if mount["Type"] == "volume"]


def volume_exists(name: str) -> bool:
    try:
        docker_sdk.from_env().volumes.get(name)
    except docker_sdk.errors.NotFound:
        return False
    return True


def metrics(serve) -> str:
    with urllib.request.urlopen(f"{serve.url}/metrics", timeout=10) as response:
        return response.read().decode()


def test_writing_into_a_declared_volume_counts_against_the_disk_limit(
    volumes_removed, serve_with, volume_repo
):
    serve = serve_with(session_disk_limit="300M", cull_interval=1)
    ready = launch(serve, volume_repo)
    container = session_of(ready)
    (volume,) = volumes_of(container)
    volumes_removed(volume)
    result = execute(ready, start_kernel(ready), FILL.format(mib=400), timeout=120)
    # The image's files in the declared path are there, as Docker puts them in a volume.
    assert result["stdout"].strip() == "seeded", result
    # Docker's count of the writable layer does not see the 400 MiB (it saw 1.89 MB for 1.2 GB).
    (listed,) = docker_sdk.from_env().api.containers(
        all=True, size=True, filters={"id": container.id}
    )
    layer = listed["SizeRw"]
    assert layer < 100 * 2**20
    wait_for(
        lambda: api(ready, "api/status")[0] != 200,
        30,
        message="the session past its disk limit (in its volume) to stop",
    )
    wait_for(lambda: 'reason="disk"' in metrics(serve), 30, message="the disk stop counted")
    # Counted before the container goes (and its volume with it): a moment later it is gone.
    wait_for(lambda: not volume_exists(volume), 10, message="the session's volume to go with it")


def test_a_volume_its_container_left_behind_is_removed(volumes_removed, serve_with, volume_repo):
    serve = serve_with(cull_interval=1)
    ready = launch(serve, volume_repo)
    container = session_of(ready)
    (volume,) = volumes_of(container)
    volumes_removed(volume)
    container.remove(force=True)  # `docker rm -f`, without -v: the volume stays
    wait_for(lambda: not volume_exists(volume), 30, message="the left-behind volume to go")
    # minibinder removed it, not Docker with the container (its next round, within a second,
    # can come before any look at the volume, so the log says it).
    left = "removed 1 session volume(s) a container removed outside minibinder left"
    wait_for(lambda: left in serve.log_file.read_text(), 10, message="the removal logged")
