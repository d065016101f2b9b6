"""Ref resolution and the safe fetch, against a real git daemon on 127.0.0.1."""

import subprocess

import pytest

from minibinder.errors import FetchError, ResolveError
from minibinder.repos.fetch import FetchLimits, fetch_commit
from minibinder.repos.providers import get_provider, parse_spec, source_from_url

SCHEMES = ["https", "git"]
LOOPBACK = ["127.0.0.1"]  # the test's own git server


def resolve(source, config):
    return get_provider(source.provider).resolve(source, config)


@pytest.fixture(scope="module")
def repo(git_server):
    fixture = git_server.create("owner/refs", {"README.md": "one\n"})
    fixture.first = fixture.commit({"a.txt": "a"}, "second", tag="v1.0")
    fixture.branch = fixture.commit({"b.txt": "b"}, "on a branch", branch="feature/x")
    fixture.head = fixture.commit({"c.txt": "c"}, "third")
    return fixture


@pytest.mark.parametrize(
    "ref, attribute",
    [
        ("HEAD", "head"),
        ("main", "head"),
        ("v1.0", "first"),
        ("feature/x", "branch"),
        ("refs/heads/main", "head"),
    ],
)
def test_resolve_ref_against_loopback_server(config, repo, ref, attribute):
    source = source_from_url(repo.url, ref, config)
    assert resolve(source, config) == getattr(repo, attribute)


def test_resolve_through_the_gh_provider(config, repo):
    source = parse_spec("gh/owner/refs/v1.0", config)
    assert resolve(source, config) == repo.first


def test_full_sha_is_taken_as_is(config, repo):
    sha = "f" * 40
    assert resolve(source_from_url(repo.url, sha, config), config) == sha


def test_unknown_ref(config, repo):
    with pytest.raises(ResolveError, match="no branch or tag named 'nope'.*did you mean HEAD"):
        resolve(source_from_url(repo.url, "nope", config), config)


def test_short_sha_gets_a_hint(config, repo):
    with pytest.raises(ResolveError, match="full 40-character SHA"):
        resolve(source_from_url(repo.url, repo.first[:7], config), config)


def test_a_mistyped_repository_is_not_found_where_the_host_answered(config, git_server):
    source = source_from_url(f"{git_server.base_url}/owner/missing", "HEAD", config)
    said = r"repository not found: .*/owner/missing \(the host answered: there is no repository"
    with pytest.raises(ResolveError, match=said):
        resolve(source, config)


def test_closed_port(config):
    source = source_from_url("git://127.0.0.1:9/owner/repo", "HEAD", config)
    with pytest.raises(ResolveError, match="could not reach"):
        resolve(source, config)


def test_fetch_one_old_commit_shallowly(tmp_path, repo):
    limits = FetchLimits(SCHEMES, 30, 50 * 2**20, internal_hosts=LOOPBACK)
    lines = list(fetch_commit(repo.url, repo.first, tmp_path / "c", limits, ref="v1.0"))
    assert lines[0].startswith("Fetching")
    checkout = tmp_path / "c"
    assert (checkout / "a.txt").exists() and not (checkout / "c.txt").exists()
    log = subprocess.run(
        ["git", "log", "--format=%H"], cwd=checkout, capture_output=True, text=True, check=True
    ).stdout.split()
    assert log == [repo.first]


def test_fetch_size_cap(tmp_path, git_server):
    big = git_server.create("owner/big", {"blob.bin": bytes(range(256)) * 40000})
    sha = big.commit({}, "empty")
    with pytest.raises(FetchError, match="larger than 1 MiB .clone_max_size"):
        list(
            fetch_commit(
                big.url,
                sha,
                tmp_path / "c",
                FetchLimits(SCHEMES, 30, 2**20, internal_hosts=LOOPBACK),
            )
        )


def test_fetch_timeout(tmp_path):
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    try:  # the server accepts and never answers: only the timeout ends the fetch
        with pytest.raises(FetchError, match="longer than 1 s .clone_timeout"):
            list(
                fetch_commit(
                    f"git://127.0.0.1:{port}/o/r",
                    "a" * 40,
                    tmp_path / "c",
                    FetchLimits(SCHEMES, 1, 2**20, internal_hosts=LOOPBACK),
                )
            )
    finally:
        for connection in accepted:
            connection.close()
        server.close()


def test_git_refuses_schemes_the_operator_did_not_allow(tmp_path, repo):
    with pytest.raises(FetchError, match="failed"):
        list(
            fetch_commit(
                repo.url,
                repo.head,
                tmp_path / "c",
                FetchLimits(["https"], 30, 2**20, internal_hosts=LOOPBACK),
            )
        )
