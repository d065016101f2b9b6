"""Egress: no build step and no session reaches the host's own services or private addresses.

Proven with listeners the tests start themselves (never with anybody else's address): one in the
test process on every host address, reached through the bridge gateway; one on a private address
in a network namespace the test makes. A container on a network of the test's own, without
minibinder's rules, reaches both: the refusals are the rules' doing.
"""

from __future__ import annotations

import secrets

import docker as docker_sdk
import pytest

from minibinder.firewall import chain_prefix, uninstall
from minibinder.identity import instance_id
from minibinder.networks import PURPOSE_LABEL, ensure_egress

from ..conftest import make_config
from ..support.netprobe import PRIVATE_ADDRESS, PROBE, HostListener, PrivateListener, probe_results


@pytest.fixture
def listeners(tmp_path):
    host = HostListener()
    with PrivateListener(tmp_path) as private:
        yield host, private
    host.close()


@pytest.fixture
def rules_of():
    """Remove the rules of the installations a test made (by their data folders). Ask for it
    before `serve_with`: the service would put its rules back until it stops."""
    data_dirs = []
    yield data_dirs.append
    for data_dir in data_dirs:
        uninstall(chain_prefix((data_dir / "instance_id").read_text().strip()))


def test_without_minibinders_rules_both_listeners_answer(build_config, listeners):
    host, private = listeners
    sdk = docker_sdk.from_env()
    network = sdk.networks.create(f"mbtest-open-{secrets.token_hex(3)}", driver="bridge")
    try:
        output = sdk.containers.run(
            build_config.base_images[build_config.default_python],
            ["python3", "-c", PROBE, f"gateway:{host.port}", private.target],
            network=network.name,
            remove=True,
            user="1000",
        ).decode()
    finally:
        network.remove()
    assert set(probe_results(output).values()) == {"reached"}, output
    assert host.peers and private.peers


def own_network() -> str:
    """A sessions' network of the test's own: installations that share one share its rules
    (every installation's chain applies to the shared bridge), so an allowlist would not show."""
    return f"mbtest-sessions-{secrets.token_hex(3)}"


def session_probe(ready, *targets) -> dict[str, str]:
    from ..support.jupyter import execute, start_kernel

    code = (
        "import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', PROBE, "
        f"*{list(targets)!r}], capture_output=True, text=True).stdout)"
    )
    result = execute(ready, start_kernel(ready), f"PROBE = {PROBE!r}\n{code}")
    return probe_results(result["stdout"])


def test_sessions_reach_neither_the_host_nor_private_addresses(
    rules_of, serve_with, git_server, listeners
):
    from ..integration.conftest import launch

    host, private = listeners
    git_server.create("hostile/egress-session", {"README.md": "x"})
    serve = serve_with(egress_filter="required", session_network=own_network())
    rules_of(serve.data_dir)
    ready = launch(serve, "gh/hostile/egress-session/HEAD")
    found = session_probe(ready, f"gateway:{host.port}", private.target)
    assert found == {f"gateway:{host.port}": "refused", private.target: "refused"}
    assert host.peers == [] and private.peers == []


def test_an_allowed_private_address_is_reached_and_nothing_else(
    rules_of, serve_with, git_server, listeners
):
    from ..integration.conftest import launch

    host, private = listeners
    git_server.create("hostile/egress-allowed", {"README.md": "x"})
    serve = serve_with(
        egress_filter="required", egress_allow=[PRIVATE_ADDRESS], session_network=own_network()
    )
    rules_of(serve.data_dir)
    ready = launch(serve, "gh/hostile/egress-allowed/HEAD")
    found = session_probe(ready, f"gateway:{host.port}", private.target)
    assert found == {f"gateway:{host.port}": "refused", private.target: "reached"}
    assert host.peers == []


def test_build_steps_run_as_root_reach_neither(
    docker, build_config, builder, git_server, listeners, rules_of
):
    host, private = listeners
    ensure_egress(build_config, docker, instance_id(build_config))
    rules_of(build_config.data_path)
    base = build_config.base_images[build_config.default_python]
    git_server.create(
        "hostile/egress-build",
        {
            "probe.py": PROBE,
            "Dockerfile": f"FROM {base}\nUSER root\nCOPY probe.py /tmp/probe.py\n"
            f"RUN python3 /tmp/probe.py gateway:{host.port} {private.target}\n",
        },
    )
    _, events = builder.built("gh/hostile/egress-build/HEAD")
    log = "".join(event.message for event in events)
    found = probe_results(log)
    assert found == {f"gateway:{host.port}": "refused", private.target: "refused"}, log
    assert host.peers == [] and private.peers == []
    # Each build had a network of its own, and it is gone.
    sdk = docker_sdk.from_env()
    instance = instance_id(build_config)
    labels = [f"{PURPOSE_LABEL}=build", f"minibinder.instance={instance}"]
    assert not sdk.networks.list(filters={"label": labels})


def test_required_rules_that_cannot_be_installed_stop_the_start(tmp_path, docker, monkeypatch):
    from minibinder.errors import ConfigError

    monkeypatch.setenv("PATH", str(tmp_path))  # no iptables to be found
    config = make_config(tmp_path / "data", egress_filter="required")
    with pytest.raises(ConfigError, match="iptables is not installed.*egress_filter = required"):
        ensure_egress(config, docker, instance_id(config))
    auto = make_config(tmp_path / "data", egress_filter="auto")
    status = ensure_egress(auto, docker, instance_id(auto))
    assert not status.installed and "iptables is not installed" in status.message
