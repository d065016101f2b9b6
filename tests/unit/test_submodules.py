"""Reading .gitmodules: entries, relative URLs, paths that stay in the checkout."""

from __future__ import annotations

import pytest

from minibinder.errors import FetchError
from minibinder.repos.submodules import check_submodule_path, submodule_entries, submodule_url


def test_entries_from_git_config_listing():
    listing = (
        "submodule.lib.path\nvendor/lib\0submodule.lib.url\n../lib.git\0"
        "submodule.a.b.path\nab\0submodule.a.b.url\nhttps://h/ab\0"
        "submodule.nourl.path\nx\0"
    )
    assert submodule_entries(listing) == [
        ("lib", "vendor/lib", "../lib.git"),
        ("a.b", "ab", "https://h/ab"),
    ]


@pytest.mark.parametrize(("url", "expected"), [
    ("../other.git", "https://host/org/other.git"),
    ("./sub", "https://host/org/repo.git/sub"),
    ("https://elsewhere/x", "https://elsewhere/x"),
])  # fmt: skip
def test_relative_urls_follow_the_superproject(url, expected):
    assert submodule_url("https://host/org/repo.git", url) == expected


@pytest.mark.parametrize("path", ["../x", "/etc", "a/../../b", ".git/hooks", "a\\b", ""])
def test_paths_out_of_the_checkout_are_refused(path):
    with pytest.raises(FetchError, match="leaves the checkout"):
        check_submodule_path("s", path)
