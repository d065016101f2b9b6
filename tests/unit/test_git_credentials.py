"""Private repositories: the git_credentials file, the helper's answers, the start-up rules
and what the exported launch log shows of a private launch."""

import io
import json

import pytest

from minibinder.config import Config
from minibinder.errors import ConfigError, SpecError
from minibinder.git_credentials import (
    credential_options,
    is_private,
    parse_credentials,
    read_credentials,
)
from minibinder.launch import check_private_launch, launch_event
from minibinder.repos.credential_helper import main as helper_main
from minibinder.settings_load import load_config

TOKEN = "s3cr3t-t0ken-value"
FILE = f"""
["git.lab.example"]
token = "{TOKEN}-host"

["git.lab.example/group/sub"]
username = "bot"
token = "{TOKEN}"

["http://127.0.0.1:8080/private"]
token = "{TOKEN}-loop"
"""


@pytest.fixture
def credentials_file(tmp_path):
    path = tmp_path / "git-credentials.toml"
    path.write_text(FILE)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    "scheme, host, path, expected",
    [
        ("https", "git.lab.example", "other/repo.git", ("token", f"{TOKEN}-host")),
        ("https", "GIT.lab.example", "group/sub/repo.git", ("bot", TOKEN)),
        ("https", "git.lab.example", "group/sub.git", ("bot", TOKEN)),  # the prefix itself
        ("https", "git.lab.example", "group/subway/repo", ("token", f"{TOKEN}-host")),
        ("http", "git.lab.example", "group/sub/repo", None),  # plain HTTP only where written
        ("https", "127.0.0.1:8080", "private/repo", ("token", f"{TOKEN}-loop")),
        ("http", "127.0.0.1:8080", "private/repo", ("token", f"{TOKEN}-loop")),
        ("http", "127.0.0.1:8080", "public/repo", None),
        ("http", "127.0.0.1:8081", "private/repo", None),  # another port: another host
        ("https", "evil.example", "git.lab.example/repo", None),
        ("ssh", "git.lab.example", "x", None),
    ],
)  # fmt: skip
def test_the_longest_matching_entry_answers(scheme, host, path, expected):
    entry = parse_credentials(FILE, "f").lookup(scheme, host, path)
    assert (entry and (entry.username, entry.token)) == expected


def test_a_repository_an_entry_covers_is_private(credentials_file):
    assert is_private("https://git.lab.example/a/b", str(credentials_file))
    assert is_private("http://127.0.0.1:8080/private/x.git", str(credentials_file))
    assert not is_private("http://127.0.0.1:8080/public/x.git", str(credentials_file))
    assert not is_private("https://github.com/a/b", str(credentials_file))
    assert not is_private("https://git.lab.example/a/b", "")


@pytest.mark.parametrize(
    "text, said",
    [
        ('["h"]\nuser = "x"\ntoken = "t"', "has user"),
        ('["h"]\nusername = "x"', "needs a token"),
        ('["h"]\ntoken = ""', "needs a token"),
        ('["u@h/p"]\ntoken = "t"', "no user"),
        ('["/p"]\ntoken = "t"', "host or host/path"),
        ('h = "t"', "must be a table"),
        ("[h\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_without_showing_a_token(text, said):
    with pytest.raises(ConfigError, match=said) as caught:
        parse_credentials(text, "f")
    assert "t0ken" not in str(caught.value) and str(caught.value).startswith("git_credentials:")


def test_a_file_others_may_read_is_refused(credentials_file):
    credentials_file.chmod(0o640)
    with pytest.raises(ConfigError, match="may be read by others .*0640.*chmod 600"):
        read_credentials(credentials_file)


def test_the_helper_answers_get_only_and_from_the_file(credentials_file):
    out = io.StringIO()
    request = "protocol=https\nhost=git.lab.example\npath=group/sub/r.git\n\n"
    assert helper_main([str(credentials_file), "get"], io.StringIO(request), out) == 0
    assert out.getvalue() == f"username=bot\npassword={TOKEN}\n"
    for action in ("store", "erase"):
        out = io.StringIO()
        helper_main([str(credentials_file), action], io.StringIO(request), out)
        assert out.getvalue() == ""
    out = io.StringIO()
    helper_main([str(credentials_file), "get"], io.StringIO("protocol=https\nhost=x\n\n"), out)
    assert out.getvalue() == ""


def test_git_is_given_the_helper_never_a_token(credentials_file):
    options = credential_options(str(credentials_file))
    assert options[0] == "-c" and options[1].startswith("credential.helper=!")
    assert "minibinder.repos.credential_helper" in options[1] and " -I " in options[1]
    assert TOKEN not in " ".join(options)
    assert credential_options("") == []


def write_settings(tmp_path, credentials_file, **more):
    lines = [f'git_credentials = "{credentials_file}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in more.items()]
    path = tmp_path / "settings.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_open_access_with_credentials_is_refused_at_start_up(tmp_path, credentials_file):
    with pytest.raises(ConfigError, match='with access = "open" anyone could launch'):
        load_config(write_settings(tmp_path, credentials_file))


def test_header_access_needs_a_list_of_who_may_launch_private_repositories(
    tmp_path, credentials_file
):
    base = {"access": "header", "trusted_proxies": ["127.0.0.1"]}
    with pytest.raises(ConfigError, match="private_repo_users or private_repo_domains"):
        load_config(write_settings(tmp_path, credentials_file, **base))
    config = load_config(
        write_settings(tmp_path, credentials_file, private_repo_users=["alice"], **base)
    )
    check_private_launch(config, "alice")
    with pytest.raises(SpecError, match="bob may not launch it here"):
        check_private_launch(config, "bob")


def test_a_code_server_launches_private_repositories_for_whoever_has_the_code():
    check_private_launch(Config(access="code", access_code_hash="pbkdf2_sha256$1$s$h"), "")


def test_the_exported_launch_log_hides_a_private_repository():
    row = {
        "time": 0.0,
        "provider": "git",
        "spec": "https%3A%2F%2Fgit.lab.example%2Fsecret-project/HEAD",
        "resolved_ref": "a" * 40,
        "status": "success",
        "build_seconds": 1.0,
        "launch_seconds": 2.0,
    }
    public = json.loads(launch_event(row, "here"))
    assert public["spec"] == row["spec"] and public["ref"] == "a" * 40
    private = json.loads(launch_event({**row, "private": 1}, "here"))
    assert private["spec"] == "private" and private["ref"] == ""
    assert "secret-project" not in launch_event({**row, "private": 1}, "here")
