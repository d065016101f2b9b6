"""Launch links cannot probe the server's network through git: hosts that resolve to internal
addresses are refused before git runs, and what users are told is minibinder's own words."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from minibinder.errors import ResolveError, SpecError
from minibinder.repos.git import explain
from minibinder.repos.providers import get_provider, source_from_url
from minibinder.repos.urlpolicy import check_clone_host

from ..conftest import make_config


@pytest.mark.parametrize(
    "url, addresses",
    [
        ("https://127.0.0.1/r.git", ["127.0.0.1"]), ("https://localhost/r.git", ["::1"]),
        ("https://10.1.2.3/r.git", ["10.1.2.3"]), ("https://db.corp/r.git", ["192.168.0.4"]),
        ("https://meta.example/r.git", ["169.254.169.254"]), ("https://z.example/r", ["0.0.0.0"]),
        ("https://v6.example/r", ["fe80::1"]), ("https://mapped.example/r", ["::ffff:127.0.0.1"]),
        ("https://mixed.example/r", ["140.82.112.3", "10.0.0.1"]),
    ],
)  # fmt: skip
def test_internal_addresses_are_refused(url, addresses):
    with pytest.raises(SpecError, match="own or a private network"):
        check_clone_host(url, [], resolve=lambda host: addresses)


def test_listed_internal_hosts_and_public_ones_pass():
    assert check_clone_host("https://gitlab.lab/r", ["gitlab.lab"], resolve=lambda h: []) == []
    public = check_clone_host("https://github.com/o/r", [], resolve=lambda h: ["140.82.112.3"])
    assert public == ["140.82.112.3"]


@pytest.fixture
def listener():
    """A port the test itself listens on: refused by policy, never connected to."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close() alone does not
    server.close()


@pytest.mark.parametrize("scheme", ["https", "git"])
def test_a_clone_url_on_loopback_never_reaches_git(tmp_path, git_server, listener, scheme):
    port, accepted = listener
    config = make_config(tmp_path / "data", git_server, internal_hosts=[])
    source = source_from_url(f"{scheme}://127.0.0.1:{port}/owner/repo", "HEAD", config)
    with pytest.raises(ResolveError, match="own or a private network"):
        get_provider("git").resolve(source, config)
    assert accepted == []  # no connection was ever made


@pytest.mark.parametrize(
    "stderr, reason",
    [
        ("fatal: unable to access 'https://127.0.0.1:1/': Failed to connect to 127.0.0.1 port 1",
         "nothing answers at that address"),
        ("fatal: unable to access 'https://x:8686/': gnutls_handshake() failed",
         "a secure connection could not be made"),
        ("fatal: repository 'https://github.com/o/missing/' not found",
         "there is no repository at that address"),
        ("fatal: could not read Username for 'https://github.com': terminal prompts disabled",
         "this repository needs credentials the server does not have"),
        ("fatal: Could not resolve host: nope.example", "its host name does not resolve"),
        ("fatal: something new", "git could not fetch it"),
    ],
)  # fmt: skip
def test_users_are_told_minibinders_words_not_gits(stderr, reason):
    assert explain(stderr) == reason
