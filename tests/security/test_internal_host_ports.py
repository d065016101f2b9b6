"""Issue 18: an `internal_hosts` entry may carry a port, and then opens that port only.

Before, a listed host opened every port of it: a submodule of a repository on the tests' git
server reached another loopback port (127.0.0.1:18586 in the finding). An entry `host:port`
(`[v6]:port`) now allows that port alone; a bare host still allows every port, as the
setting's help says. Real git, real listeners the test starts on loopback.
"""

from __future__ import annotations

import secrets

import pytest

from minibinder.errors import FetchError, ResolveError
from minibinder.repos.fetch import FetchLimits, fetch_commit
from minibinder.repos.refs import resolve_ref

from ..support.githttp import CountingListener, GitHttpServer
from .test_submodules import with_submodule

SCHEMES = ["https", "git", "http"]


@pytest.fixture
def listener():
    """Another port on loopback, where something listens: it must never hear from git."""
    trap = CountingListener("127.0.0.1")
    yield trap
    trap.close()


def test_a_submodule_cannot_reach_another_port_of_a_listed_host(tmp_path, git_server, listener):
    outer = git_server.create(f"ports/outer-{secrets.token_hex(3)}", {"README.md": "x"})
    with_submodule(outer, "evil", "evil", f"git://127.0.0.1:{listener.port}/x", outer.head)
    limits = FetchLimits(
        SCHEMES, 60, 2**30, submodules=True, internal_hosts=[f"127.0.0.1:{git_server.port}"]
    )
    with pytest.raises(FetchError) as refused:
        list(fetch_commit(outer.url, outer.head, tmp_path / "c", limits))
    assert str(refused.value).startswith("submodule 'evil': ")  # the listed port was fetched
    assert f"port {listener.port} of 127.0.0.1" in str(refused.value)
    assert listener.peers == []


def test_a_launch_link_reaches_the_listed_port_and_no_other(git_server, listener):
    repo = git_server.create(f"ports/repo-{secrets.token_hex(3)}", {"README.md": "x"})
    listed = [f"127.0.0.1:{git_server.port}"]
    assert resolve_ref(repo.url, "HEAD", SCHEMES, 30, listed) == repo.head
    with pytest.raises(ResolveError, match=f"'127.0.0.1:{listener.port}' would allow it"):
        resolve_ref(f"git://127.0.0.1:{listener.port}/o/r", "HEAD", SCHEMES, 30, listed)
    assert listener.peers == []


def test_a_bare_host_still_allows_every_port(git_server):
    repo = git_server.create(f"ports/bare-{secrets.token_hex(3)}", {"README.md": "x"})
    assert resolve_ref(repo.url, "HEAD", SCHEMES, 30, ["127.0.0.1"]) == repo.head


@pytest.fixture
def ipv6_served(git_server):
    try:
        server = GitHttpServer(git_server.root, host="::1")
    except OSError as error:
        pytest.skip(f"this host has no IPv6 loopback ({error})")
    trap = CountingListener("::1")
    yield server, trap
    server.close()
    trap.close()


def test_an_ipv6_entry_takes_its_port_in_brackets(git_server, ipv6_served):
    server, trap = ipv6_served
    repo = git_server.create(f"ports/v6-{secrets.token_hex(3)}", {"README.md": "x"})
    listed = [f"[::1]:{server.port}"]
    assert resolve_ref(server.url(repo.path), "HEAD", SCHEMES, 30, listed) == repo.head
    with pytest.raises(ResolveError, match=rf"'\[::1\]:{trap.port}' would allow it"):
        resolve_ref(f"http://[::1]:{trap.port}/o/r", "HEAD", SCHEMES, 30, listed)
    assert trap.peers == []
