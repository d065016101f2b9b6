"""Where a launch lands, links and badges, as on mybinder.org."""

import pytest

from minibinder.errors import SpecError
from minibinder.web.links import launch_link, session_path, with_token


@pytest.mark.parametrize(
    "args, expected",
    [
        ({}, "lab"),
        ({"urlpath": "/lab/tree/a.ipynb"}, "lab/tree/a.ipynb"),
        ({"urlpath": "tree"}, "tree"),
        ({"urlpath": "/voila/render/x.ipynb?dark=1"}, "voila/render/x.ipynb?dark=1"),
        ({"labpath": "notebooks/a b.ipynb"}, "doc/tree/notebooks/a%20b.ipynb"),
        ({"filepath": "/index.ipynb"}, "tree/index.ipynb"),
        ({"labpath": "a.ipynb", "filepath": "b.ipynb"}, "doc/tree/a.ipynb"),
        ({"labpath": "a.ipynb", "urlpath": "/tree"}, "doc/tree/a.ipynb"),
    ],
)
def test_session_path(args, expected):
    assert session_path(**args) == expected


@pytest.mark.parametrize(
    "urlpath",
    [
        "//evil.example/x",
        "\\\\evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "data:text/html,x",
        "/lab\nLocation: x",
        "/a\\b",
    ],
)
def test_session_path_refuses_other_origins(urlpath):
    with pytest.raises(SpecError, match="must be a path inside the session"):
        session_path(urlpath=urlpath)


def test_with_token():
    assert with_token("http://h/user/x/lab", "t/k") == "http://h/user/x/lab?token=t%2Fk"
    assert with_token("http://h/user/x/v?a=1", "t") == "http://h/user/x/v?a=1&token=t"


def test_badges():
    badges = launch_link("http://lab.example:8585/", "gh/o/r/HEAD", "nb/a.ipynb")
    assert badges.url == "http://lab.example:8585/v2/gh/o/r/HEAD?labpath=nb%2Fa.ipynb"
    assert badges.markdown == (
        "[![Binder](http://lab.example:8585/badge_logo.svg)]"
        "(http://lab.example:8585/v2/gh/o/r/HEAD?labpath=nb%2Fa.ipynb)"
    )
    assert badges.rst.startswith(".. image:: http://lab.example:8585/badge_logo.svg\n :target: ")
    assert 'href="http://lab.example:8585/v2/gh/o/r/HEAD?labpath=nb%2Fa.ipynb"' in badges.html
    classic = launch_link("http://h/", "gh/o/r/HEAD", "a.ipynb", ui="classic")
    assert classic.url.endswith("?filepath=a.ipynb")
    assert launch_link("http://h/", "gh/o/r/HEAD", ui="classic").url.endswith("?urlpath=%2Ftree")


@pytest.mark.parametrize(
    "args",
    [
        {"urlpath": "../0123456789abcdef/steal"}, {"urlpath": "/%2e%2e/x"},
        {"urlpath": "%2E%2E/x"}, {"urlpath": "lab/../../x"}, {"urlpath": "%252e%252e/x"},
        {"urlpath": "lab/..%2f..%2fx"}, {"urlpath": "./../x"}, {"filepath": "../../x"},
        {"labpath": "../../../x"}, {"urlpath": ".."},
    ],
)  # fmt: skip
def test_landing_paths_never_leave_the_session(args):
    with pytest.raises(SpecError, match="leaves the session"):
        session_path(**args)


@pytest.mark.parametrize(
    "args, expected",
    [({"urlpath": "lab/tree/../x"}, "lab/tree/../x"), ({"urlpath": "tree?path=../x"},
     "tree?path=../x"), ({"labpath": "a/../b.ipynb"}, "doc/tree/a/../b.ipynb")],
)  # fmt: skip
def test_dot_segments_that_stay_inside_are_kept(args, expected):
    assert session_path(**args) == expected
