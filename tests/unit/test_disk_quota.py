"""A session's disk limit through the storage driver where it can cap a writable layer; the
culler's watch alone where it cannot (and when the daemon refuses the option)."""

from __future__ import annotations

import docker.errors
import pytest

from minibinder.docker_client import Docker, storage_quota_possible


@pytest.mark.parametrize(("info", "possible"), [
    ({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "xfs"]]}, True),
    ({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]]}, False),
    ({"Driver": "btrfs", "DriverStatus": []}, True),
    ({"Driver": "vfs"}, False),
])  # fmt: skip
def test_which_drivers_can_cap_a_writable_layer(info, possible):
    assert storage_quota_possible(info) is possible


class FakeApi:
    """Refuses --storage-opt as Docker does on XFS mounted without project quotas."""

    def __init__(self):
        self.host_configs = []

    def info(self):
        return {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "xfs"]]}

    def create_host_config(self, **options):
        self.host_configs.append(options)
        return options

    def create_container(self, host_config, **options):
        if "storage_opt" in host_config:
            raise docker.errors.APIError("--storage-opt is supported only for overlay over xfs "
                                         "with 'pquota' mount option")  # fmt: skip
        return {"Id": "c0ffee"}

    def start(self, container_id):
        pass


class FakeClient:
    def __init__(self):
        self.api = FakeApi()


def start(client: Docker) -> str:
    return client.start_container(
        image="i", name="n", command=[], environment={}, labels={}, network="net", user="1000",
        mem_limit=1, mem_reservation=1, nano_cpus=1, pids_limit=1, disk_limit=5 * 2**30,
    )  # fmt: skip


def test_a_refused_quota_falls_back_to_the_watch_and_is_not_asked_again():
    fake = FakeClient()
    client = Docker(fake)  # type: ignore[arg-type]
    assert client.disk_quota_supported()
    assert start(client) == "c0ffee"
    assert fake.api.host_configs[0]["storage_opt"] == {"size": str(5 * 2**30)}
    assert "storage_opt" not in fake.api.host_configs[1]
    assert not client.disk_quota_supported()
