"""Two installations on one Docker daemon touch only their own sessions, networks, volumes,
images and egress rules: everything one of them removes (stopping its sessions, reconciling,
culling, sweeping build networks and volumes, collecting images) is its own, by its instance
label, and the other's work goes on."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys

import docker as docker_sdk

from minibinder.firewall import chain_prefix
from minibinder.jobs import collect, maintain_sessions
from minibinder.services import create_services
from minibinder.settings_load import load_config

from ..support.jupyter import api
from ..support.sse import events
from .conftest import launch

SESSION, INSTANCE, NETWORK, PID = (
    "minibinder.session",
    "minibinder.instance",
    "minibinder.network",
    "minibinder.pid",
)


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def built_only(serve, spec: str) -> str:
    received = events(f"{serve.url}/build/{spec}?build_only=true")
    assert received[-1]["phase"] == "ready", received[-1]
    return received[-1]["imageName"]


def rules(instance: str) -> str:
    prefix = chain_prefix(instance)
    listed = (
        subprocess.run(
            ["iptables", "-w", "-S", f"{prefix}-{chain}"],
            capture_output=True,
            text=True,
            check=True,
        )
        for chain in ("HOST", "OUT")
    )
    return "".join(done.stdout for done in listed)


class Leftovers:
    """What a build or a session of an installation may leave for that installation's sweeps:
    a build network whose process is gone, a volume no container uses."""

    def __init__(self, sdk: docker_sdk.DockerClient, instance: str):
        self.network = sdk.networks.create(
            f"mbtest-build-{instance[:8]}-{secrets.token_hex(2)}",
            driver="bridge",
            labels={NETWORK: "build", INSTANCE: instance, PID: str(dead_pid())},
        )
        self.volume = sdk.volumes.create(labels={SESSION: "gone", INSTANCE: instance})
        self.sdk = sdk

    def remaining(self) -> set[str]:
        found = set()
        if self.sdk.networks.list(ids=[self.network.id]):
            found.add("build network")
        if self.sdk.volumes.list(filters={"name": self.volume.name}):
            found.add("volume")
        return found

    def remove(self) -> None:
        for thing in (self.network, self.volume):
            with contextlib.suppress(docker_sdk.errors.NotFound):
                thing.remove()


def test_two_installations_touch_only_their_own(serve_with, git_server, build_config, tmp_path):
    base = build_config.base_images[build_config.default_python]
    git_server.create("twin/a", {"README.md": "a"})
    git_server.create("twin/a-spare", {"README.md": "a, not launched"})
    git_server.create("twin/b", {"Dockerfile": f"FROM {base}\nVOLUME /srv/data\n"})
    git_server.create("twin/b-spare", {"README.md": "b, not launched"})
    # `a` collects its unused images above 1 % disk use (always, here); both need their rules.
    settings = {"cull_interval": 1, "egress_filter": "required"}
    network_a, network_b = (f"mbtest-{name}-{secrets.token_hex(3)}" for name in "ab")
    a = serve_with(
        data_dir=tmp_path / "a",
        session_network=network_a,
        image_gc_high=1,
        image_gc_low=1,
        **settings,
    )
    b = serve_with(data_dir=tmp_path / "b", session_network=network_b, **settings)
    ready_a, ready_b = launch(a, "gh/twin/a/HEAD"), launch(b, "gh/twin/b/HEAD")
    spare_a, spare_b = built_only(a, "gh/twin/a-spare/HEAD"), built_only(b, "gh/twin/b-spare/HEAD")
    instance_a, instance_b = (
        (serve.data_dir / "instance_id").read_text().strip() for serve in (a, b)
    )
    sdk = docker_sdk.from_env()
    (container_b,) = sdk.containers.list(filters={"label": f"{INSTANCE}={instance_b}"})
    (volume_b,) = [m["Name"] for m in container_b.attrs["Mounts"] if m["Type"] == "volume"]
    rules_b = rules(instance_b)
    # b's own sweeps would take leftovers of b's: those of a third installation, not running
    # now (stopped for an upgrade), are what only a's sweeps could wrongly take.
    leftovers_a, leftovers_c = Leftovers(sdk, instance_a), Leftovers(sdk, secrets.token_hex(8))
    try:
        # a's operator stops every session; a's jobs then run a round each, here and now.
        stopped = subprocess.run(
            [sys.executable, "-m", "minibinder", "--config", str(a.config_file), "stop", "--all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert stopped.count("stopped ") == 1, stopped
        services = create_services(load_config(a.config_file))
        maintain_sessions(services)
        collect(services)

        # a removed its own: its session, its unused image, its leftovers.
        assert not sdk.containers.list(all=True, filters={"label": f"{INSTANCE}={instance_a}"})
        assert api(ready_a, "api/status")[0] != 200
        assert not sdk.images.list(name=spare_a), "a's unused image stayed"
        assert leftovers_a.remaining() == set(), "a's sweeps did not run"
        # b's are all there, its session still answers; the third one's leftovers wait for it.
        assert api(ready_b, "api/status")[0] == 200
        container_b.reload()
        assert container_b.status == "running"
        assert sdk.volumes.get(volume_b)
        assert sdk.images.get(spare_b)
        assert sdk.networks.get(network_b)
        assert leftovers_c.remaining() == {"build network", "volume"}
        assert rules(instance_b) == rules_b
    finally:
        leftovers_a.remove()
        leftovers_c.remove()
