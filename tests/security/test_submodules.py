"""Submodules (clone_submodules = true) pass the same checks as launch links: a submodule URL on
a host that resolves to this server's network, a local path or a forbidden scheme is refused
before git connects, and a submodule cannot be placed outside the checkout."""

from __future__ import annotations

import pytest

from minibinder.errors import FetchError
from minibinder.repos.fetch import FetchLimits, fetch_commit

from ..gitserver import git
from ..netprobe import HostListener

SCHEMES = ["https", "git"]


def with_submodule(repo, name: str, path: str, url: str, sha: str) -> str:
    """Commit a submodule `name` at `path` pinned to `sha`, its URL as given."""
    (repo.work / path).mkdir(parents=True, exist_ok=True)
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", cwd=repo.work)
    text = f'[submodule "{name}"]\n\tpath = {path}\n\turl = {url}\n'
    return repo.commit({".gitmodules": text}, f"submodule {name}")


def limits(internal_hosts=("127.0.0.1",)) -> FetchLimits:
    return FetchLimits(SCHEMES, 60, 2**30, submodules=True, internal_hosts=list(internal_hosts))


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
    outer.commit({".gitmodules": '[submodule "escape"]\n\tpath = ../../outside\n\t'
                  'url = ../escape-lib\n'}, "a path out of the checkout")  # fmt: skip
    with pytest.raises(FetchError, match="its path '../../outside' leaves the checkout"):
        list(fetch_commit(outer.url, outer.head, tmp_path / "c", limits()))
    assert not (tmp_path / "outside").exists()
