"""What integration tests leave on the host beyond their own containers and images: the egress
chains (`MB-*`) and build networks every `minibinder serve` and `build` installs, as it would
for an operator, and the session networks of the tests' own (`mbtest-*`).

`snapshot()` before a run, `sweep(snapshot)` after it. `make test` runs two pytests at once
(scripts/integration-tests.sh), so it takes the snapshot before both and sweeps after both:
a sweep at the end of either would take the other's from under it.

    python -m tests.support.host_sweep save FILE     # before
    python -m tests.support.host_sweep sweep FILE    # after
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import docker

from minibinder.firewall import uninstall

BUILD_NETWORKS = {"label": "minibinder.network=build"}
TEST_NETWORK_PREFIX = "mbtest-"


def minibinder_chains() -> list[str]:
    """The prefixes of minibinder's iptables chains on the host."""
    listed = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    return [
        line.split()[1].rsplit("-", 1)[0]
        for line in listed.splitlines()
        if line.startswith("-N MB-")
    ]


def snapshot() -> dict[str, list[str]]:
    """What is there before the tests: chains and build networks that are not theirs."""
    networks = docker.from_env().networks.list(filters=BUILD_NETWORKS)
    return {"chains": minibinder_chains(), "build_networks": [n.id for n in networks]}


def sweep(before: dict[str, list[str]]) -> None:
    """Remove the chains and build networks added since `before` (a service stopped mid-build
    leaves its build's network: the next start of that installation would sweep it, and test
    installations never start again), and the tests' session networks no run still uses."""
    for prefix in set(minibinder_chains()) - set(before["chains"]):
        uninstall(prefix)
    client = docker.from_env()
    for network in client.networks.list(filters=BUILD_NETWORKS):
        if network.id not in before["build_networks"]:
            network.remove()
    for network in client.networks.list(names=[TEST_NETWORK_PREFIX]):
        if network.name.startswith(TEST_NETWORK_PREFIX):
            with contextlib.suppress(docker.errors.APIError):  # in use: another run's
                network.remove()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "sweep"):
        print(__doc__, file=sys.stderr)
        return 2
    action, path = argv[0], Path(argv[1])
    if action == "save":
        path.write_text(json.dumps(snapshot()))
    else:
        sweep(json.loads(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
