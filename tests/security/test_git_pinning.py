"""git's HTTP(S) connections go to the addresses minibinder checked, never to what the name
resolves to a moment later (DNS rebinding), and a redirect's new host is pinned the same way.

A rebinding name, without contacting any real public address: minibinder's resolver (the
function the host check calls) is replaced to answer STAND_IN for `localhost`, and STAND_IN
counts as public in this test only; git's own lookup of `localhost` is the system's, which
answers loopback (127.0.0.1, and ::1 where it exists). The repository is served on STAND_IN;
a Trap listens on the same port at the loopback addresses and must hear nothing.
"""

from __future__ import annotations

import secrets

import pytest

from minibinder.errors import FetchError
from minibinder.repos import urlpolicy
from minibinder.repos.fetch import FetchLimits, fetch_commit
from minibinder.repos.refs import resolve_ref

from ..support.githttp import GitHttpServer, Redirector, Trap
from ..support.tls import make_certificates

STAND_IN = "127.0.0.2"  # plays a public address; a loopback one, so nothing leaves the host
SCHEMES = ["https", "http"]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def resolver(monkeypatch):
    """minibinder's lookups: `answers` is what each lookup of localhost gets, in turn (the
    last one repeats); every other name as the system says."""
    system = urlpolicy.resolve_addresses
    state = {"answers": [[STAND_IN]], "asked": 0}

    def resolve(host):
        if host != "localhost":
            return system(host)
        state["asked"] += 1
        return state["answers"][min(state["asked"], len(state["answers"])) - 1]

    is_internal = urlpolicy.internal
    monkeypatch.setattr(urlpolicy, "resolve_addresses", resolve)
    monkeypatch.setattr(urlpolicy, "internal", lambda a: a != STAND_IN and is_internal(a))
    return state


@pytest.fixture
def served(git_server, certificates, monkeypatch, request):
    """The repository over HTTP or HTTPS on STAND_IN, and a Trap on loopback at its port."""
    monkeypatch.setenv("GIT_SSL_CAINFO", str(certificates.ca))
    certs = certificates if request.param == "https" else None
    for _ in range(20):
        server = GitHttpServer(git_server.root, host=STAND_IN, certs=certs)
        try:
            trap = Trap(server.port)
            break
        except OSError:  # the port is taken on 127.0.0.1 or ::1: another one
            server.close()
    else:
        raise RuntimeError("no port free on 127.0.0.2, 127.0.0.1 and ::1 at once")
    repo = git_server.create(f"pinned/r-{secrets.token_hex(3)}", {"README.md": "pinned\n"})
    yield server, trap, repo
    server.close()
    trap.close()


def limits(internal_hosts=()):
    return FetchLimits(SCHEMES, 30, 2**30, internal_hosts=list(internal_hosts))


@pytest.mark.parametrize("served", ["http", "https"], indirect=True)
def test_git_connects_only_to_the_checked_address(tmp_path, resolver, served):
    server, trap, repo = served
    url = server.url(repo.path, host="localhost")
    assert resolve_ref(url, "HEAD", SCHEMES, 30) == repo.head
    list(fetch_commit(url, repo.head, tmp_path / "c", limits()))
    assert (tmp_path / "c/README.md").read_text() == "pinned\n"
    assert server.paths, "git reached the checked address"
    assert trap.peers == []  # and never what the name resolves to now


@pytest.mark.parametrize("served", ["https"], indirect=True)
def test_a_name_that_rebinds_before_the_fetch_is_checked_again(tmp_path, resolver, served):
    server, trap, repo = served
    url = server.url(repo.path, host="localhost")
    resolver["answers"] = [[STAND_IN], ["127.0.0.1"]]
    assert resolve_ref(url, "HEAD", SCHEMES, 30) == repo.head
    with pytest.raises(FetchError, match="own or a private network"):
        list(fetch_commit(url, repo.head, tmp_path / "c", limits()))
    assert trap.peers == []


@pytest.mark.parametrize("served", ["https"], indirect=True)
def test_a_redirects_new_host_is_pinned_the_same_way(tmp_path, resolver, served, certificates):
    """Issue 18, item 6: git used to follow a redirect itself, resolving the new host on its
    own; minibinder now checks and pins it like a launch link."""
    server, trap, repo = served
    moved = Redirector(server.url(repo.path, host="localhost") + "/", certs=certificates)
    try:
        old_url = moved.url("pinned/old-name")
        assert resolve_ref(old_url, "HEAD", SCHEMES, 30, ["127.0.0.1"]) == repo.head
        list(fetch_commit(old_url, repo.head, tmp_path / "c", limits(["127.0.0.1"])))
        assert (tmp_path / "c/README.md").read_text() == "pinned\n"
    finally:
        moved.close()
    assert moved.paths and server.paths
    assert trap.peers == []
