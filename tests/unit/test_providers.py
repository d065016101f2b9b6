"""Spec parsing as BinderHub does it, the allow/deny lists and image names."""

import pytest

from minibinder.builds.images import image_name, image_slug
from minibinder.errors import SpecError
from minibinder.repos.providers import parse_spec, source_from_url, spec_from_form
from minibinder.repos.refs import check_ref
from minibinder.settings_load import load_config

CONFIG = load_config()
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "spec, url, ref, persistent",
    [
        (
            "gh/binder-examples/requirements/HEAD",
            "https://github.com/binder-examples/requirements",
            "HEAD",
            "v2/gh/binder-examples/requirements/" + SHA,
        ),
        (
            "gh/owner/repo.git/main",
            "https://github.com/owner/repo",
            "main",
            "v2/gh/owner/repo/" + SHA,
        ),
        (
            "gh/owner/repo/feature/nested/branch",
            "https://github.com/owner/repo",
            "feature/nested/branch",
            "v2/gh/owner/repo/" + SHA,
        ),
        (
            "gh/owner/repo/feature%2Fx",
            "https://github.com/owner/repo",
            "feature/x",
            "v2/gh/owner/repo/" + SHA,
        ),
        ("gh/owner/repo/" + SHA, "https://github.com/owner/repo", SHA, "v2/gh/owner/repo/" + SHA),
        (
            "gl/group%2Fproject/main",
            "https://gitlab.com/group/project.git",
            "main",
            "v2/gl/group%2Fproject/" + SHA,
        ),
        (
            "gl/group%2Fsub%2Fproject/v1.0",
            "https://gitlab.com/group/sub/project.git",
            "v1.0",
            "v2/gl/group%2Fsub%2Fproject/" + SHA,
        ),
        (
            "git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/main",
            "https://example.org/a/b.git",
            "main",
            "v2/git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/" + SHA,
        ),
        (
            "git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/release%2F2",
            "https://example.org/a/b.git",
            "release/2",
            "v2/git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/" + SHA,
        ),
        (
            "gist/someone/8f3a1b",
            "https://gist.github.com/8f3a1b.git",
            "HEAD",
            "v2/gist/someone/8f3a1b/" + SHA,
        ),
        (
            "gist/someone/8f3a1b/main",
            "https://gist.github.com/8f3a1b.git",
            "main",
            "v2/gist/someone/8f3a1b/" + SHA,
        ),
    ],
)
def test_parse_spec(spec, url, ref, persistent):
    source = parse_spec(spec, CONFIG)
    assert (source.repo_url, source.ref, source.persistent_request(SHA)) == (url, ref, persistent)
    assert source.request == "v2/" + spec


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gh/owner/repo", "Did you mean 'owner/repo/HEAD'?"),
        ("gh/owner", "user/repo/ref"),
        ("gh/owner//main", "user/repo/ref"),
        ("gh/../repo/main", "may contain only"),
        ("gh/own er/repo/main", "may contain only"),
        ("gh/owner/repo/-upload-pack", "not a valid git ref"),
        ("gh/owner/repo/a..b", "not a valid git ref"),
        ("gh/owner/repo/a b", "not a valid git ref"),
        ("gh/owner/repo/x@{1}", "not a valid git ref"),
        ("gl/project/main", "namespace/project"),
        ("gl/group%2Fproject", "namespace/project"),
        ("git/https%3A%2F%2Fexample.org%2Fa.git", "clone URL>/ref"),
        ("git/file%3A%2F%2F%2Fetc/main", "scheme 'file' is not supported"),
        ("gist/user", "user/gist-id"),
        ("gist/user/not-hex!/main", "letters and digits"),
        ("bb/owner/repo/main", "unknown provider 'bb'"),
        ("gh", "nothing follows"),
    ],
)
def test_parse_spec_errors(spec, message):
    with pytest.raises(SpecError, match=message.replace("?", r"\?").replace("(", r"\(")):
        parse_spec(spec, CONFIG)


@pytest.mark.parametrize("ref", ["HEAD", "main", "v1.0", "feature/x", SHA, "refs/heads/main"])
def test_valid_refs(ref):
    assert check_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "-x",
        "a..b",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "x.lock",
        "x/",
        "/x",
        ".x",
        "a//b",
        "a\nb",
        "@{-1}x",
    ],
)
def test_invalid_refs(ref):
    with pytest.raises(SpecError):
        check_ref(ref)


def test_provider_base_urls_are_configurable():
    config = load_config(
        overrides={"github_url": "git://127.0.0.1:9418/", "allowed_clone_schemes": ["git"]}
    )
    assert parse_spec("gh/o/r/HEAD", config).repo_url == "git://127.0.0.1:9418/o/r"


def test_allow_and_deny_lists():
    config = load_config(overrides={"spec_allow": ["^gh/my-org/"], "spec_deny": ["/secret"]})
    assert parse_spec("gh/my-org/repo/HEAD", config)
    with pytest.raises(SpecError, match="not on the allow list"):
        parse_spec("gh/other/repo/HEAD", config)
    with pytest.raises(SpecError, match="deny list"):
        parse_spec("gh/my-org/secret/HEAD", config)


def test_source_from_url_round_trips_through_the_git_provider():
    source = source_from_url("https://example.org/a/b.git", "dev", CONFIG)
    assert (source.provider, source.repo_url, source.ref) == (
        "git",
        "https://example.org/a/b.git",
        "dev",
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Owner/Repo",
        "https://github.com/owner/repo",
        "git://127.0.0.1:9418/a/b",
        "local:/home/me/project",
    ],
)
def test_image_names_are_docker_safe_and_distinct(url):
    name = image_name("minibinder-", url, SHA)
    repository, tag = name.rsplit(":", 1)
    assert tag == SHA
    assert repository == repository.lower() and len(repository) < 128
    assert all(c.isalnum() or c in "-._/" for c in repository)


def test_image_slug_distinguishes_case():
    assert image_slug("https://github.com/Owner/Repo") != image_slug(
        "https://github.com/owner/repo"
    )


@pytest.mark.parametrize(
    "provider, repository, ref, expected",
    [
        ("gh", "owner/repo", "", "gh/owner/repo/HEAD"),
        ("gh", "https://github.com/owner/repo.git", "main", "gh/owner/repo/main"),
        ("gh", "owner/repo", "feature/x", "gh/owner/repo/feature/x"),
        ("gl", "group/sub/project", "v1", "gl/group%2Fsub%2Fproject/v1"),
        ("gl", "https://gitlab.com/group/project", "release/1", "gl/group%2Fproject/release%2F1"),
        ("git", "https://example.org/r.git", "", "git/https%3A%2F%2Fexample.org%2Fr.git/HEAD"),
        ("gist", "someone/abc123", "", "gist/someone/abc123/HEAD"),
    ],
)
def test_spec_from_form(provider, repository, ref, expected):
    assert spec_from_form(provider, repository, ref) == expected


def test_spec_from_form_errors():
    with pytest.raises(SpecError, match="enter a repository"):
        spec_from_form("gh", " ", "")
    with pytest.raises(SpecError, match="unknown provider"):
        spec_from_form("svn", "x", "")
