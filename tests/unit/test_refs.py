"""Refs: picking the commit from `git ls-remote` output, the ref cache, and hostile input that
must never reach git."""

import pytest

from minibinder.cli.build_command import pick_target
from minibinder.errors import SpecError
from minibinder.repos import refs
from minibinder.repos.refs import RefCache, pick_sha
from minibinder.settings_load import load_config

CONFIG = load_config(overrides={"allowed_clone_schemes": ["https", "git"]})


def test_pick_sha_prefers_exact_then_branch_then_peeled_tag():
    output = (
        "1" * 40
        + "\tHEAD\n"
        + "2" * 40
        + "\trefs/heads/main\n"
        + "3" * 40
        + "\trefs/tags/main\n"
        + "4" * 40
        + "\trefs/tags/v1\n"
        + "5" * 40
        + "\trefs/tags/v1^{}\n"
    )
    assert pick_sha(output, "HEAD") == "1" * 40
    assert pick_sha(output, "main") == "2" * 40
    assert pick_sha(output, "v1") == "5" * 40
    assert pick_sha(output, "nope") is None


@pytest.mark.parametrize(
    "argument",
    [
        "git/file%3A%2F%2F%2Fetc%2Fpasswd/HEAD",
        "git/ext%3A%3Ash%20-c%20id/HEAD",
        "git/--upload-pack%3Did/HEAD",
        "https://user:pw@example.org/r.git",
        "ssh://host/repo",
        "gh/owner/repo/--upload-pack=id",
        "git/https%3A%2F%2F-oProxyCommand%3Did%2Fr/HEAD",
    ],
)
def test_hostile_input_starts_no_git_process(argument):
    # The unit tier's guard (conftest.py) fails the test if any process is started.
    with pytest.raises(SpecError):
        pick_target(CONFIG, argument, None)


def test_ref_cache_reuses_an_answer_for_its_ttl(monkeypatch):
    calls = []

    def fake_resolve(repo_url, ref, schemes, timeout, internal_hosts=(), credentials_file=""):
        calls.append(ref)
        return str(len(calls)) * 40

    monkeypatch.setattr(refs, "resolve_ref", fake_resolve)
    now = [0.0]
    cache = RefCache(clock=lambda: now[0])
    url = "https://example.org/r.git"
    assert cache.resolve(url, "main", 60, ["https"], 5) == "1" * 40
    now[0] = 59
    assert cache.resolve(url, "main", 60, ["https"], 5) == "1" * 40
    now[0] = 61
    assert cache.resolve(url, "main", 60, ["https"], 5) == "2" * 40
    assert cache.resolve(url, "other", 60, ["https"], 5) == "3" * 40
    assert calls == ["main", "main", "other"]


@pytest.mark.parametrize(
    "stderr, answered",
    [
        ("fatal: repository 'https://github.com/o/typo/' not found", True),
        ("fatal: could not read Username for 'https://github.com': terminal prompts disabled",
         True),
        ("fatal: unable to access 'https://127.0.0.1:1/': Failed to connect", False),
        ("fatal: Could not resolve host: nope.example", False),
        ("fatal: unable to access 'https://x/': Operation timed out", False),
    ],
)  # fmt: skip
def test_a_host_that_answered_is_told_apart_from_one_that_did_not(stderr, answered):
    from minibinder.repos.git import git_failure

    assert git_failure("looking up x", stderr).host_answered is answered
