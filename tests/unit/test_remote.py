"""Redirects are read from git's curl trace and followed by minibinder, each hop checked and
pinned like a launch link (git's own runs are faked here; tests/security runs real git)."""

from __future__ import annotations

from pathlib import Path

import pytest

from minibinder.errors import FetchError
from minibinder.repos import remote, urlpolicy
from minibinder.repos.git import GitFailed
from minibinder.repos.remote import (
    Remote,
    moved_repository,
    pin_resolution,
    redirect_location,
    through_redirects,
)

TRACE_301 = """\
10:00:00.000001 http.c:684              => Send header: GET /o/old.git/info/refs?service=git-upload-pack HTTP/1.1
10:00:00.000002 http.c:684              <= Recv header: HTTP/1.1 301 Moved Permanently
10:00:00.000003 http.c:684              <= Recv header: Server: test
10:00:00.000004 http.c:684              <= Recv header: Location: https://github.com/o/new.git/info/refs?service=git-upload-pack
"""  # noqa: E501

TRACE_PROXY_THEN_HTTP2_302 = """\
10:00:00.000001 http.c:684              <= Recv header: HTTP/1.1 200 Connection established
10:00:00.000002 http.c:684              <= Recv header: location: https://nowhere.example/
10:00:00.000003 http.c:684              <= Recv header: HTTP/2 302
10:00:00.000004 http.c:684              <= Recv header: location: /o/new/info/refs?service=git-upload-pack
"""  # noqa: E501


def test_the_location_of_the_first_redirect_is_read_from_the_trace():
    assert redirect_location(TRACE_301) == (
        "https://github.com/o/new.git/info/refs?service=git-upload-pack"
    )
    assert redirect_location(TRACE_PROXY_THEN_HTTP2_302) == (
        "/o/new/info/refs?service=git-upload-pack"
    )
    assert redirect_location("<= Recv header: HTTP/1.1 404 Not Found\n") is None
    assert redirect_location("") is None


@pytest.mark.parametrize(
    "location, moved",
    [
        ("https://github.com/o/new.git/info/refs?service=git-upload-pack",
         "https://github.com/o/new.git"),
        ("/o/new/info/refs?service=git-upload-pack", "https://github.com/o/new"),
        ("https://github.com/login", None),  # not the repository: a sign-in page
        ("https://github.com/o/new/info/refs?service=git-upload-pack&x=1", None),
        ("https://github.com/o/new/git-upload-pack", None),
    ],
)  # fmt: skip
def test_the_moved_repository_is_the_location_without_gits_request(location, moved):
    assert moved_repository("https://github.com/o/old.git", location) == moved


def test_pins_name_the_host_and_port_git_connects_to():
    assert pin_resolution("https://gh.example/o/r", ["140.82.112.3", "2606:50c0::1"]) == [
        "-c",
        "http.curloptResolve=gh.example:443:140.82.112.3,[2606:50c0::1]",
    ]
    assert pin_resolution("git://gh.example/o/r", ["140.82.112.3"]) == []


class FakeGit:
    """Answers each URL as a table says: a redirect (trace written, GitFailed) or output."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.seen = answers, []

    def __call__(self, where: Remote) -> str:
        self.seen.append(where)
        answer = self.answers[where.url]
        if answer.startswith("->"):
            Path(where.env["GIT_TRACE_CURL"]).write_text(
                "<= Recv header: HTTP/1.1 301 Moved\n"
                f"<= Recv header: Location: {answer[2:]}{remote.DISCOVERY}\n"
            )
            raise GitFailed("looking up", "git could not fetch it")
        if answer.startswith("!"):
            raise GitFailed("looking up", answer[1:])
        return answer


@pytest.fixture
def public_resolver(monkeypatch):
    """Every name resolves to one public address, except names ending in .internal; an IP
    literal is itself, as with the system resolver."""
    looked_up = []

    def resolve(host):
        looked_up.append(host)
        if urlpolicy.is_ip_address(host):
            return [host]
        return ["10.0.0.7"] if host.endswith(".internal") else ["140.82.112.3"]

    monkeypatch.setattr(urlpolicy, "resolve_addresses", resolve)
    return looked_up


def follow(url, git, internal_hosts=(), schemes=("https",)):
    return through_redirects(url, [], schemes, internal_hosts, "looking up", git)


def test_a_redirect_is_followed_checked_and_pinned(public_resolver):
    git = FakeGit(
        {"https://old.example/o/r": "->https://new.example/o/r", "https://new.example/o/r": "sha"}
    )
    assert follow("https://old.example/o/r", git) == "sha"
    assert public_resolver == ["new.example"]
    assert git.seen[1].options == ("-c", "http.curloptResolve=new.example:443:140.82.112.3")


@pytest.mark.parametrize(
    "target",
    [
        "https://db.internal/o/r",  # resolves to a private address
        "https://127.0.0.1:22/o/r",  # a listed host, at a port its entry does not list
        "http://new.example/o/r",  # plain http, not allowed
        "https://user:pw@new.example/o/r",  # credentials
        "https://new.example/-o/r",  # an option-like path
    ],
)
def test_a_redirect_the_policy_refuses_is_not_tried(public_resolver, target):
    git = FakeGit({"https://old.example/o/r": f"->{target}"})
    with pytest.raises(FetchError) as refused:
        follow("https://old.example/o/r", git, internal_hosts=["127.0.0.1:443"])
    assert len(git.seen) == 1
    assert "which minibinder may not or cannot reach" in str(refused.value)


@pytest.mark.parametrize(
    "start, target",
    [
        ("https://old.example/o/r", "https://new.example/lab/secret"),  # public to private
        ("https://new.example/lab/old", "https://old.example/o/r"),  # private to public
    ],
)
def test_a_redirect_between_a_private_and_a_public_repository_is_not_tried(
    public_resolver, tmp_path, start, target
):
    # git would give the target's token to a launch decided public (git_credentials, #24).
    credentials = tmp_path / "git-credentials.toml"
    credentials.write_text('["new.example/lab"]\ntoken = "t0ken"\n')
    credentials.chmod(0o600)
    git = FakeGit({start: f"->{target}", target: "sha"})
    with pytest.raises(FetchError):
        through_redirects(start, [], ("https",), (), "looking up", git, str(credentials))
    assert len(git.seen) == 1
    within = FakeGit(
        {
            "https://new.example/lab/a": "->https://new.example/lab/b",
            "https://new.example/lab/b": "sha",
        }
    )
    assert (
        through_redirects(
            "https://new.example/lab/a", [], ("https",), (), "looking up", within, str(credentials)
        )
        == "sha"
    )


def test_refused_and_unreachable_redirects_read_the_same(public_resolver):
    old, new = "https://old.example/o/r", "https://127.0.0.1:8443/o/r"
    answers = {old: f"->{new}", new: "!nothing answers at that address"}
    with pytest.raises(FetchError) as refused:
        follow(old, FakeGit(answers), internal_hosts=["127.0.0.1:443"])
    with pytest.raises(FetchError) as unreachable:
        follow(old, FakeGit(answers), internal_hosts=["127.0.0.1:443", "127.0.0.1:8443"])
    assert str(refused.value) == str(unreachable.value)


def test_redirects_stop_after_a_few(public_resolver):
    git = FakeGit(
        {f"https://h{i}.example/o/r": f"->https://h{i + 1}.example/o/r" for i in range(10)}
    )
    with pytest.raises(FetchError, match=f"redirects more than {remote.MAX_REDIRECTS} times"):
        follow("https://h0.example/o/r", git)
    assert len(git.seen) == remote.MAX_REDIRECTS + 1


def test_gits_own_failures_without_a_redirect_pass_through(public_resolver):
    git = FakeGit({"https://old.example/o/r": "!there is no repository at that address"})
    with pytest.raises(GitFailed, match="there is no repository at that address"):
        follow("https://old.example/o/r", git)
