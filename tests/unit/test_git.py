"""Ref resolution and the safe fetch, against a real git daemon on 127.0.0.1."""

import subprocess

import pytest

from minibinder.errors import FetchError, ResolveError
from minibinder.fetch import FetchLimits, fetch_commit
from minibinder.providers import pick_sha, resolve_ref
from minibinder.spec import parse_spec, source_from_url

SCHEMES = ["https", "git"]


@pytest.fixture(scope="module")
def repo(git_server):
    fixture = git_server.create("owner/refs", {"README.md": "one\n"})
    fixture.first = fixture.commit({"a.txt": "a"}, "second", tag="v1.0")
    fixture.branch = fixture.commit({"b.txt": "b"}, "on a branch", branch="feature/x")
    fixture.head = fixture.commit({"c.txt": "c"}, "third")
    return fixture


def test_pick_sha_prefers_exact_then_branch_then_peeled_tag():
    output = ("1" * 40 + "\tHEAD\n" + "2" * 40 + "\trefs/heads/main\n" +
              "3" * 40 + "\trefs/tags/main\n" + "4" * 40 + "\trefs/tags/v1\n" +
              "5" * 40 + "\trefs/tags/v1^{}\n")
    assert pick_sha(output, "HEAD") == "1" * 40
    assert pick_sha(output, "main") == "2" * 40
    assert pick_sha(output, "v1") == "5" * 40
    assert pick_sha(output, "nope") is None


@pytest.mark.parametrize("ref, attribute", [
    ("HEAD", "head"), ("main", "head"), ("v1.0", "first"), ("feature/x", "branch"),
    ("refs/heads/main", "head")])
def test_resolve_ref_against_loopback_server(config, repo, ref, attribute):
    source = source_from_url(repo.url, ref, config)
    assert resolve_ref(source, SCHEMES, 30) == getattr(repo, attribute)


def test_resolve_through_the_gh_provider(config, repo):
    source = parse_spec("gh/owner/refs/v1.0", config)
    assert resolve_ref(source, SCHEMES, 30) == repo.first


def test_full_sha_is_taken_as_is(config, repo):
    sha = "f" * 40
    assert resolve_ref(source_from_url(repo.url, sha, config), SCHEMES, 30) == sha


def test_unknown_ref(config, repo):
    with pytest.raises(ResolveError, match="no branch or tag named 'nope'.*did you mean HEAD"):
        resolve_ref(source_from_url(repo.url, "nope", config), SCHEMES, 30)


def test_short_sha_gets_a_hint(config, repo):
    with pytest.raises(ResolveError, match="full 40-character SHA"):
        resolve_ref(source_from_url(repo.url, repo.first[:7], config), SCHEMES, 30)


def test_unreachable_repository(config, git_server):
    source = source_from_url(f"{git_server.base_url}/owner/missing", "HEAD", config)
    with pytest.raises(ResolveError, match="could not reach"):
        resolve_ref(source, SCHEMES, 30)


def test_closed_port(config):
    source = source_from_url("git://127.0.0.1:9/owner/repo", "HEAD", config)
    with pytest.raises(ResolveError, match="could not reach"):
        resolve_ref(source, SCHEMES, 30)


def test_fetch_one_old_commit_shallowly(tmp_path, repo):
    limits = FetchLimits(SCHEMES, 30, 50 * 2**20)
    lines = list(fetch_commit(repo.url, repo.first, tmp_path / "c", limits, ref="v1.0"))
    assert lines[0].startswith("Fetching")
    checkout = tmp_path / "c"
    assert (checkout / "a.txt").exists() and not (checkout / "c.txt").exists()
    log = subprocess.run(["git", "log", "--format=%H"], cwd=checkout, capture_output=True,
                         text=True, check=True).stdout.split()
    assert log == [repo.first]


def test_fetch_size_cap(tmp_path, git_server):
    big = git_server.create("owner/big", {"blob.bin": bytes(range(256)) * 40000})
    sha = big.commit({}, "empty")
    with pytest.raises(FetchError, match="larger than 1 MiB .clone_max_size"):
        list(fetch_commit(big.url, sha, tmp_path / "c", FetchLimits(SCHEMES, 30, 2**20)))


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
            list(fetch_commit(f"git://127.0.0.1:{port}/o/r", "a" * 40, tmp_path / "c",
                              FetchLimits(SCHEMES, 1, 2**20)))
    finally:
        for connection in accepted:
            connection.close()
        server.close()


def test_git_refuses_schemes_the_operator_did_not_allow(tmp_path, repo):
    with pytest.raises(FetchError, match="failed"):
        list(fetch_commit(repo.url, repo.head, tmp_path / "c", FetchLimits(["https"], 30, 2**20)))


@pytest.mark.parametrize("argument", [
    "git/file%3A%2F%2F%2Fetc%2Fpasswd/HEAD", "git/ext%3A%3Ash%20-c%20id/HEAD",
    "git/--upload-pack%3Did/HEAD", "https://user:pw@example.org/r.git", "ssh://host/repo",
    "gh/owner/repo/--upload-pack=id", "git/https%3A%2F%2F-oProxyCommand%3Did%2Fr/HEAD",
])
def test_hostile_input_starts_no_git_process(config, monkeypatch, argument):
    from minibinder import gitproc
    from minibinder.build_cli import pick_target
    from minibinder.errors import SpecError

    def no_git(*args, **kwargs):
        raise AssertionError("git was started")

    monkeypatch.setattr(gitproc.subprocess, "Popen", no_git)
    with pytest.raises(SpecError):
        pick_target(config, argument, None)


def test_ref_cache_reuses_an_answer_for_its_ttl(config, monkeypatch):
    from minibinder import providers

    calls = []

    def fake_resolve(source, schemes, timeout):
        calls.append(source.ref)
        return str(len(calls)) * 40

    monkeypatch.setattr(providers, "resolve_ref", fake_resolve)
    now = [0.0]
    cache = providers.RefCache(60, clock=lambda: now[0])
    source = source_from_url("https://example.org/r.git", "main", config)
    assert cache.resolve(source, SCHEMES, 5) == "1" * 40
    now[0] = 59
    assert cache.resolve(source, SCHEMES, 5) == "1" * 40
    now[0] = 61
    assert cache.resolve(source, SCHEMES, 5) == "2" * 40
    assert calls == ["main", "main"]
