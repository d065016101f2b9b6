"""Issue 18, item 6: an HTTP redirect cannot take git past the host check or the address pin.

Real git over real HTTPS on loopback: a redirector the test starts on 127.0.0.1 (listed in
internal_hosts, as in the finding) answers git's first request with a redirect; the target is
another loopback listener the test starts, and what is asserted is who it heard from. A
redirect is followed by minibinder, not git, and only to a URL that passes the same checks; a
renamed repository (a redirect to an allowed host) still launches.
"""

from __future__ import annotations

import secrets

import pytest

from minibinder.errors import FetchError, ResolveError
from minibinder.repos import remote
from minibinder.repos.fetch import FetchLimits, fetch_commit
from minibinder.repos.refs import resolve_ref

from ..support.githttp import GitHttpServer, Redirector, Trap
from ..support.gitserver import free_port
from ..support.tls import make_certificates

SCHEMES = ["https", "git"]
ANY_SHA = "1" * 40


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted(certificates, monkeypatch):
    """git (through minibinder's environment for it) trusts the test's CA."""
    monkeypatch.setenv("GIT_SSL_CAINFO", str(certificates.ca))
    return certificates


@pytest.fixture
def started():
    """Servers a test starts, closed after it."""
    servers = []
    yield servers.append
    for server in servers:
        server.close()


def redirector(started, certs, target, **options) -> Redirector:
    server = Redirector(target, certs=certs, **options)
    started(server)
    return server


def trap(started) -> Trap:
    listener = Trap()
    started(listener)
    return listener


def look_up(url, internal_hosts, schemes=SCHEMES):
    return resolve_ref(url, "HEAD", schemes, 30, internal_hosts)


def fetch(url, dest, internal_hosts, sha=ANY_SHA):
    limits = FetchLimits(SCHEMES, 30, 2**30, internal_hosts=internal_hosts)
    return list(fetch_commit(url, sha, dest, limits))


@pytest.mark.parametrize("operation", ["look up", "fetch"])
def test_a_redirect_to_a_host_the_policy_refuses_is_never_connected_to(
    tmp_path, trusted, started, operation
):
    """The finding as reported: 127.0.0.1 listed, the redirect to localhost (not listed)."""
    target = trap(started)
    moved = redirector(started, trusted, f"https://localhost:{target.port}/o/r.git/")
    with pytest.raises((ResolveError, FetchError)) as refused:
        if operation == "look up":
            look_up(moved.url("x.git"), ["127.0.0.1"])
        else:
            fetch(moved.url("x.git"), tmp_path / "c", ["127.0.0.1"])
    assert moved.paths, "git asked the allowed host first"
    assert target.peers == []  # the redirect's target never heard from git
    assert f"redirects to https://localhost:{target.port}/o/r.git" in str(refused.value)


def test_the_message_does_not_tell_whether_the_refused_port_is_open(trusted, started):
    listening, closed = trap(started), free_port()
    messages = []
    for port in (listening.port, closed):
        moved = redirector(started, trusted, f"https://localhost:{port}/o/r.git/")
        with pytest.raises(ResolveError) as refused:
            look_up(moved.url("x.git"), ["127.0.0.1"])
        text = str(refused.value).replace(str(moved.port), "<from>").replace(str(port), "<to>")
        messages.append(text)
    assert messages[0] == messages[1]
    assert listening.peers == []


def test_refused_and_unreachable_read_the_same(trusted, started):
    """A redirect to a port the policy refuses, and to a port it allows where nothing listens:
    one message, so a redirect cannot sort the server's own ports into open and closed."""
    closed = free_port()
    moved = redirector(started, trusted, f"https://localhost:{closed}/o/r.git/")
    listed = f"127.0.0.1:{moved.port}"
    with pytest.raises(ResolveError) as refused:
        look_up(moved.url("x.git"), [listed])
    with pytest.raises(ResolveError) as unreachable:
        look_up(moved.url("x.git"), [listed, f"localhost:{closed}"])
    assert str(refused.value) == str(unreachable.value)
    assert "may not or cannot reach" in str(refused.value)


def test_a_renamed_repository_still_launches(tmp_path, git_server, trusted, started):
    """A redirect to a host the policy allows is followed: a moved repository's old launch
    links and badges keep working, as they do on mybinder.org."""
    repo = git_server.create(f"moved/new-{secrets.token_hex(3)}", {"README.md": "moved\n"})
    served = GitHttpServer(git_server.root, certs=trusted)
    started(served)
    moved = redirector(started, trusted, served.url(repo.path) + "/")
    old_url = moved.url("moved/old-name")
    assert look_up(old_url, ["127.0.0.1"]) == repo.head
    lines = fetch(old_url, tmp_path / "c", ["127.0.0.1"], sha=repo.head)
    assert (tmp_path / "c/README.md").read_text() == "moved\n"
    assert lines[-1].startswith("Fetched")
    assert len(moved.paths) == 2  # once for the look-up, once for the fetch


def test_a_redirect_to_plain_http_is_refused_where_only_https_is_allowed(
    git_server, trusted, started
):
    repo = git_server.create(f"moved/plain-{secrets.token_hex(3)}", {"README.md": "x"})
    plain = GitHttpServer(git_server.root)
    started(plain)
    moved = redirector(started, trusted, plain.url(repo.path) + "/")
    with pytest.raises(ResolveError, match="may not or cannot reach"):
        look_up(moved.url("x.git"), ["127.0.0.1"], schemes=["https"])
    assert plain.peers == []


def test_a_redirect_to_something_other_than_the_repository_is_not_followed(trusted, started):
    target = trap(started)
    login = redirector(started, trusted, f"https://127.0.0.1:{target.port}/login", keep_path=False)
    with pytest.raises(ResolveError, match="redirects to a page that is not a repository"):
        look_up(login.url("x.git"), ["127.0.0.1"])
    assert target.peers == []


def test_redirects_stop_after_a_few(trusted, started):
    loop = Redirector("", certs=trusted)
    started(loop)
    loop.target = loop.url("x.git/")  # x.git redirects to x.git
    with pytest.raises(ResolveError, match=f"more than {remote.MAX_REDIRECTS} times"):
        look_up(loop.url("x.git"), ["127.0.0.1"])
    assert len(loop.paths) == remote.MAX_REDIRECTS + 1
