"""A session's disk limit through the storage driver where it can cap a writable layer; the
culler's watch alone where it cannot (and when the daemon refuses the option). What the watch
counts: the writable layer and the volumes the image declares."""

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
        self.df_calls = 0
        self.sizes = {"v1": 300 * 2**20, "v2": 2**20}

    def inspect_image(self, name):
        return {"Config": {"Volumes": {"/data": {}, "/var/lib/db": {}}}}

    def containers(self, all, size, filters):
        mounts = [
            {"Type": "volume", "Name": "v1"},
            {"Type": "bind", "Name": ""},
            {"Type": "volume", "Name": "v2"},
        ]
        return [{"SizeRw": 5 * 2**20, "Mounts": mounts if filters["id"] == "vol" else []}]

    def df(self):
        self.df_calls += 1
        if self.sizes is None:
            raise docker.errors.APIError("a disk usage operation is already running")
        volumes = [
            {"Name": name, "UsageData": {"Size": size, "RefCount": 1}}
            for name, size in self.sizes.items()
        ]
        return {"Volumes": volumes + [{"Name": "not-measured", "UsageData": {"Size": -1}}]}

    def info(self):
        return {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "xfs"]]}

    def create_host_config(self, **options):
        self.host_configs.append(options)
        return options

    def create_container(self, host_config, **options):
        if "storage_opt" in host_config:
            raise docker.errors.APIError(
                "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
            )
        return {"Id": "c0ffee"}

    def start(self, container_id):
        pass


class FakeClient:
    def __init__(self):
        self.api = FakeApi()


def start(client: Docker) -> str:
    return client.start_container(
        image="i",
        name="n",
        command=[],
        environment={},
        labels={"minibinder.session": "s"},
        network="net",
        user="1000",
        mem_limit=1,
        mem_reservation=1,
        nano_cpus=1,
        pids_limit=1,
        disk_limit=5 * 2**30,
    )


def test_a_refused_quota_falls_back_to_the_watch_and_is_not_asked_again():
    fake = FakeClient()
    client = Docker(fake)  # type: ignore[arg-type]
    assert client.disk_quota_supported()
    assert start(client) == "c0ffee"
    assert fake.api.host_configs[0]["storage_opt"] == {"size": str(5 * 2**30)}
    assert "storage_opt" not in fake.api.host_configs[1]
    assert not client.disk_quota_supported()


def test_the_volumes_an_image_declares_are_mounted_labelled():
    fake = FakeClient()
    start(Docker(fake))  # type: ignore[arg-type]
    mounts = fake.api.host_configs[-1]["mounts"]
    assert [mount["Target"] for mount in mounts] == ["/data", "/var/lib/db"]
    assert all(mount["Type"] == "volume" and mount["Source"] is None for mount in mounts)
    assert all(mount["VolumeOptions"]["Labels"] == {"minibinder.session": "s"} for mount in mounts)


def test_written_bytes_count_the_layer_and_the_volumes():
    fake = FakeClient()
    client = Docker(fake)  # type: ignore[arg-type]
    assert client.written_bytes("plain") == 5 * 2**20
    assert fake.api.df_calls == 0  # no volume, no walk over every volume of the host
    assert client.written_bytes("vol") == 5 * 2**20 + 300 * 2**20 + 2**20


def test_volume_sizes_are_measured_at_most_once_in_a_while_and_kept_when_busy():
    fake = FakeClient()
    client = Docker(fake)  # type: ignore[arg-type]
    assert client.volume_sizes(now=100.0) == {"v1": 300 * 2**20, "v2": 2**20}
    client.volume_sizes(now=102.0)
    assert fake.api.df_calls == 1
    fake.api.sizes = None  # the daemon is measuring for someone else
    assert client.volume_sizes(now=200.0) == {"v1": 300 * 2**20, "v2": 2**20}


def test_a_volume_not_measured_yet_makes_the_size_unknown():
    fake = FakeClient()
    fake.api.sizes = {"v1": 10}
    assert Docker(fake).written_bytes("vol") is None  # type: ignore[arg-type]
