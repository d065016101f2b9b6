"""Per-engine decisions (pure): what `docker info` says the engine is, where its sessions are
reached, and which host features minibinder can rely on there."""

from __future__ import annotations

import pytest

from minibinder.engines import (
    EngineFacts,
    capabilities,
    check_limits_policy,
    decide_reach,
    facts_of,
    is_remote,
    limits_hold,
    short_image_name,
)
from minibinder.errors import ConfigError
from minibinder.sessions.reconcile import endpoint_of

ROOTFUL = {"ServerVersion": "20.10.24", "SecurityOptions": ["name=seccomp,profile=default"],
           "OperatingSystem": "Debian GNU/Linux 12", "CgroupDriver": "cgroupfs",
           "CgroupVersion": "1"}  # fmt: skip
ROOTLESS = {**ROOTFUL, "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
            "CgroupDriver": "none"}  # fmt: skip
DESKTOP = {**ROOTFUL, "OperatingSystem": "Docker Desktop", "CgroupDriver": "cgroupfs",
           "CgroupVersion": "2"}  # fmt: skip
DOCKER_VERSION = {"Version": "20.10.24", "Components": [{"Name": "Engine"}]}
PODMAN_VERSION = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine"}]}


@pytest.mark.parametrize(
    "info, version, host, name, rootless, desktop, remote, reach",
    [
        (ROOTFUL, DOCKER_VERSION, "", "docker", False, False, False, "network"),
        (ROOTFUL, DOCKER_VERSION, "unix:///var/run/docker.sock", "docker", False, False, False,
         "network"),
        (ROOTLESS, DOCKER_VERSION, "unix:///run/user/1001/docker.sock", "docker", True, False,
         False, "published"),
        (DESKTOP, DOCKER_VERSION, "", "docker", False, True, False, "published"),
        (ROOTFUL, PODMAN_VERSION, "unix:///run/podman/podman.sock", "podman", False, False, False,
         "network"),
        ({**ROOTFUL, "SecurityOptions": ["name=rootless"]}, PODMAN_VERSION, "", "podman", True,
         False, False, "published"),
        # Rootless Podman 4.3's compat info as measured: its own key, no name=rootless.
        ({**ROOTFUL, "Rootless": True}, PODMAN_VERSION, "unix:///run/user/1002/podman/podman.sock",
         "podman", True, False, False, "published"),
        ({**ROOTFUL, "Rootless": False}, PODMAN_VERSION, "", "podman", False, False, False,
         "network"),
        (ROOTFUL, DOCKER_VERSION, "tcp://build-box.lab:2376", "docker", False, False, True,
         "published"),
        (ROOTFUL, DOCKER_VERSION, "tcp://127.0.0.1:2375", "docker", False, False, False,
         "network"),
    ],
)  # fmt: skip
def test_the_engine_decides_where_sessions_are_reached(
    info, version, host, name, rootless, desktop, remote, reach
):
    facts = facts_of(info, version, host)
    assert (facts.name, facts.rootless, facts.desktop, facts.remote) == (
        name,
        rootless,
        desktop,
        remote,
    )
    assert decide_reach(facts, "auto") == reach
    assert decide_reach(facts, "network") == "network"  # the operator knows better
    assert decide_reach(facts, "published") == "published"


def test_rootless_docker_without_cgroups_enforces_no_limits():
    assert not facts_of(ROOTLESS, DOCKER_VERSION, "").cgroups
    assert facts_of(ROOTFUL, DOCKER_VERSION, "").cgroups


@pytest.mark.parametrize("host, remote", [
    ("", False), ("unix:///var/run/docker.sock", False), ("npipe:////./pipe/docker", False),
    ("tcp://localhost:2375", False), ("tcp://[::1]:2375", False), ("ssh://me@lab-server", True),
    ("tcp://10.0.0.5:2376", True)])  # fmt: skip
def test_which_docker_hosts_are_another_machine(host, remote):
    assert is_remote(host) is remote


def facts(**changes) -> EngineFacts:
    base = dict(
        name="docker",
        version="20.10",
        rootless=False,
        desktop=False,
        remote=False,
        cgroup_version="1",
        cgroups=True,
    )
    return EngineFacts(**{**base, **changes})


def by_name(found):
    return {capability.name: capability for capability in found}


def test_capabilities_of_a_rootful_engine_run_as_root():
    found = by_name(
        capabilities(facts(), "network", cgroup_files=True, root=True, limits_enforced=True)
    )
    assert all(capability.available for capability in found.values())
    assert "session network" in found["sessions reached by"].found


def test_a_rootless_engine_cannot_be_filtered_and_without_cgroups_limits_nothing():
    found = by_name(
        capabilities(
            facts(rootless=True, cgroups=False),
            "published",
            cgroup_files=False,
            root=True,
            limits_enforced=None,
        )
    )
    assert not found["egress filter"].available
    assert "netfilter" in found["egress filter"].found
    assert not found["limits enforced"].available
    assert "allow_unlimited_sessions" in found["limits enforced"].fix
    assert "loopback" in found["sessions reached by"].found
    assert not found["cgroup files"].available and "stats API" in found["cgroup files"].found


def test_limits_read_back_from_a_session_decide():
    refused = by_name(capabilities(facts(), "network", True, True, limits_enforced=False))
    assert not refused["limits enforced"].available


def test_a_published_session_is_reached_at_its_current_port():
    published = {
        "Labels": {"minibinder.reach": "published"},
        "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8888, "PublicPort": 49153, "Type": "tcp"}],
    }
    assert endpoint_of(published, "minibinder-sessions") == "127.0.0.1:49153"
    assert endpoint_of({**published, "Ports": []}, "minibinder-sessions") == ""
    routed = {
        "Labels": {},
        "NetworkSettings": {"Networks": {"minibinder-sessions": {"IPAddress": "172.20.0.5"}}},
    }
    assert endpoint_of(routed, "minibinder-sessions") == "172.20.0.5:8888"


@pytest.mark.parametrize("text, holds", [
    ("2147483648\n", True), ("max\n", False), ("9223372036854771712\n", False), ("", False),
    ("1073741824", True)])  # fmt: skip
def test_limits_read_back_from_inside_a_session(text, holds):
    assert limits_hold(text, 2 * 2**30) is holds


def test_an_engine_without_limits_is_refused_on_a_public_bind_unless_allowed():
    unlimited = facts(rootless=True, cgroups=False)
    with pytest.raises(ConfigError, match="allow_unlimited_sessions = true"):
        check_limits_policy(unlimited, "0.0.0.0:8585", allow_unlimited=False)
    assert "no session limits" in check_limits_policy(unlimited, "0.0.0.0:8585", True)
    assert "no session limits" in check_limits_policy(unlimited, "127.0.0.1:8585", False)
    assert check_limits_policy(facts(), "0.0.0.0:8585", allow_unlimited=False) == ""


@pytest.mark.parametrize(
    "listed, given",
    [
        ("localhost/minibinder-base:py3.11", "minibinder-base:py3.11"),
        ("docker.io/library/minibinder-x-demo:abc", "minibinder-x-demo:abc"),
        ("minibinder-x-demo:abc", "minibinder-x-demo:abc"),
        ("registry.example.org/lab/image:1", "registry.example.org/lab/image:1"),
    ],
)
def test_podman_names_of_images_are_taken_back_to_those_minibinder_gave(listed, given):
    assert short_image_name(listed) == given
