"""Submodules (clone_submodules = true) pass the same checks as launch links: a submodule URL on
a host that resolves to this server's network, a local path or a forbidden scheme is refused
before git connects, a submodule cannot be placed outside the checkout, and nesting stops at
three levels."""

from __future__ import annotations

import secrets

import pytest

from minibinder.errors import FetchError
from minibinder.repos.fetch import FetchLimits, fetch_commit

from ..support.githttp import GitHttpServer
from ..support.gitserver import git
from ..support.netprobe import HostListener

SCHEMES = ["https", "git"]


def with_submodule(repo, name: str, path: str, url: str, sha: str) -> str:
    """Commit a submodule `name` at `path` pinned to `sha`, its URL as given."""
    (repo.work / path).mkdir(parents=True, exist_ok=True)
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", cwd=repo.work)
    text = f'[submodule "{name}"]\n\tpath = {path}\n\turl = {url}\n'
    return repo.commit({".gitmodules": text}, f"submodule {name}")


def limits(internal_hosts=("127.0.0.1",), schemes=SCHEMES) -> FetchLimits:
    return FetchLimits(schemes, 60, 2**30, submodules=True, internal_hosts=list(internal_hosts))


def test_submodules_are_fetched_at_their_pinned_commit(tmp_path, git_server):
    library = git_server.create("subs/library", {"lib.py": "VALUE = 1\n"})
    pinned = library.head
    library.commit({"lib.py": "VALUE = 2\n"}, "a later commit the superproject does not pin")
    outer = git_server.create("subs/outer", {"README.md": "x"})
    with_submodule(outer, "library", "vendor/library", "../library", pinned)
    lines = list(fetch_commit(outer.url, outer.head, tmp_path / "c", limits()))
    assert (tmp_path / "c/vendor/library/lib.py").read_text() == "VALUE = 1\n"
    assert "Fetching submodule library" in lines


@pytest.mark.parametrize(("url", "error"), [
    ("git://127.0.0.2:{port}/x", "points to an address on this server's own or a private"),
    ("git://localhost:{port}/x", "points to an address on this server's own or a private"),
    ("file:///etc", "file"),
    ("/srv/git/private.git", "is not a URL"),
    ("ext::sh -c touch% /tmp/pwned", "ext"),
    ("http://127.0.0.1:{port}/x", "scheme"),
])  # fmt: skip
def test_submodule_urls_are_checked_before_git_connects(tmp_path, git_server, url, error):
    listener = HostListener()
    try:
        outer = git_server.create(f"subs/bad-{abs(hash(url)) % 10**8}", {"README.md": "x"})
        with_submodule(outer, "evil", "evil", url.format(port=listener.port), outer.head)
        with pytest.raises(FetchError) as refused:
            list(fetch_commit(outer.url, outer.head, tmp_path / "c", limits()))
        assert str(refused.value).startswith("submodule 'evil': ")
        assert error.lower() in str(refused.value).lower()
        assert listener.peers == []  # git never connected
    finally:
        listener.close()


def test_a_submodule_path_cannot_leave_the_checkout(tmp_path, git_server):
    library = git_server.create("subs/escape-lib", {"lib.py": "x"})
    outer = git_server.create("subs/escape", {"README.md": "x"})
    with_submodule(outer, "escape", "inner", "../escape-lib", library.head)
    # Rewrite the path in .gitmodules only: git's index keeps the gitlink at "inner".
    outer.commit(
        {".gitmodules": '[submodule "escape"]\n\tpath = ../../outside\n\turl = ../escape-lib\n'},
        "a path out of the checkout",
    )
    with pytest.raises(FetchError, match="its path '../../outside' leaves the checkout"):
        list(fetch_commit(outer.url, outer.head, tmp_path / "c", limits()))
    assert not (tmp_path / "outside").exists()


def nested_chain(git_server, levels: int) -> list:
    """Repositories outer → level1 → … → level<levels>, each pinning the next one's commit by
    a relative URL; returned outermost first."""
    prefix = f"nest-{secrets.token_hex(4)}"
    inner = git_server.create(f"{prefix}/level{levels}", {f"level{levels}.txt": "deepest\n"})
    chain, sha = [inner], inner.head
    for level in range(levels - 1, -1, -1):
        name = f"level{level}" if level else "outer"
        repo = git_server.create(f"{prefix}/{name}", {f"{name}.txt": "x\n"})
        sha = with_submodule(
            repo, f"level{level + 1}", f"level{level + 1}", f"../level{level + 1}", sha
        )
        chain.insert(0, repo)
    return chain


@pytest.fixture
def served_over_http(git_server):
    """The git server's repositories over HTTP too: its log says which ones git asked for."""
    server = GitHttpServer(git_server.root)
    yield server
    server.close()


def asked_for(server: GitHttpServer) -> set[str]:
    """The repositories (last path segment) git asked the server for."""
    return {
        path.removesuffix("/info/refs").removesuffix("/git-upload-pack").rsplit("/", 1)[1]
        for path in server.paths
    }


def test_three_levels_of_submodules_are_fetched(tmp_path, git_server, served_over_http):
    outer = nested_chain(git_server, 3)[0]
    url = served_over_http.url(outer.path)
    list(fetch_commit(url, outer.head, tmp_path / "c", limits(schemes=["http"])))
    assert (tmp_path / "c/level1/level2/level3/level3.txt").read_text() == "deepest\n"


def test_submodule_nesting_stops_at_three_levels(tmp_path, git_server, served_over_http):
    """Four levels, served from loopback: levels 1 to 3 are fetched, the fourth is refused
    before git asks for it (SECURITY.md promises three levels, so the number is written out)."""
    outer = nested_chain(git_server, 4)[0]
    url = served_over_http.url(outer.path)
    with pytest.raises(FetchError, match="submodules nest deeper than 3$"):
        list(fetch_commit(url, outer.head, tmp_path / "c", limits(schemes=["http"])))
    assert asked_for(served_over_http) == {"outer", "level1", "level2", "level3"}
