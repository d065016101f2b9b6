"""The command line and settings files: --config on either side of the command, the access
code written into a file that ends with a table, and the settings in force with their sources."""

from __future__ import annotations

import stat
import tomllib

import pytest
from click.testing import CliRunner

from minibinder.cli import NO_SETTINGS, main
from minibinder.errors import ConfigError
from minibinder.identity import code_matches
from minibinder.settings_docs import effective_toml
from minibinder.settings_file import with_top_level
from minibinder.settings_load import load_config, load_settings

WORKSHOP = (
    'data_dir = "/srv/mb"\nbind = "0.0.0.0:8585"\n\n[warm_pool]\n"gh/org/workshop/HEAD" = 2\n'
)


def run(*args, input=None, env=None):
    return CliRunner().invoke(main, list(args), input=input, env=env or {}, catch_exceptions=False)


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "minibinder.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\nbuild_timeout = 77\n')
    return path


def test_config_is_accepted_before_and_after_the_command(settings_file, tmp_path):
    before = run("--config", str(settings_file), "settings", "--effective")
    after = run("settings", "--effective", "--config", str(settings_file))
    assert before.exit_code == after.exit_code == 0, after.output
    assert before.output == after.output
    assert f"build_timeout = 77  # file {settings_file}" in after.output
    # The one after the command wins; MINIBINDER_CONFIG is the group's, read first.
    other = tmp_path / "other.toml"
    other.write_text("build_timeout = 88\n")
    both = run(
        "settings",
        "--effective",
        "--config",
        str(other),
        env={"MINIBINDER_CONFIG": str(settings_file)},
    )
    assert "build_timeout = 88" in both.output
    from_env = run("settings", "--effective", env={"MINIBINDER_CONFIG": str(settings_file)})
    assert "build_timeout = 77" in from_env.output


def test_every_command_that_reads_settings_takes_config():
    for name, command in main.commands.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert ("--config" in options) is (name not in NO_SETTINGS), name


def test_a_bad_environment_variable_stops_commands_that_read_settings(settings_file):
    result = run(
        "admin-token", "--config", str(settings_file), env={"MINIBINDER_ADMIN_BND": "0.0.0.0:1"}
    )
    assert result.exit_code == 1
    assert "did you mean MINIBINDER_ADMIN_BIND?" in result.output


def test_access_code_writes_above_the_table_a_file_ends_with(tmp_path):
    path = tmp_path / "minibinder.toml"
    path.write_text(WORKSHOP)
    path.chmod(0o640)
    result = run("access-code", "--write", str(path), input="sesame\n")
    assert result.exit_code == 0, result.output
    config = load_config(path)
    assert config.access == "code" and code_matches("sesame", config.access_code_hash)
    assert config.warm_pool == {"gh/org/workshop/HEAD": 2} and config.bind == "0.0.0.0:8585"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    # Again, with another code: the lines are replaced, not repeated.
    assert run("access-code", "--write", str(path), input="opensesame\n").exit_code == 0
    text = path.read_text()
    assert text.count("access_code_hash =") == 1 and text.count("\naccess =") == 1
    assert code_matches("opensesame", load_config(path).access_code_hash)


def test_access_code_makes_a_missing_file_for_its_owner_only(tmp_path):
    path = tmp_path / "new.toml"
    assert run("access-code", "--write", str(path), input="sesame\n").exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path).access == "code"


def test_access_code_prints_the_lines_and_where_they_go():
    result = CliRunner().invoke(main, ["access-code"], input="sesame\n")
    lines = result.stdout.splitlines()
    assert lines[0] == 'access = "code"' and lines[1].startswith('access_code_hash = "pbkdf2')
    assert "above the first [table]" in result.stderr and "--write" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "",
        'bind = "0.0.0.0:8585"',  # no newline at the end
        'access = "open"\naccess_code_hash = "old"\n[base_images]\n"3.11" = "b"\n',
        '# comment\n\n[warm_pool]\n"gh/a/b/HEAD" = 1\n\n[repo_quotas]\n"^gh/a/" = 3\n',
        'allowed_registries = [\n  "docker.io",\n]\n[warm_pool]\n"gh/a/b/HEAD" = 1\n',
    ],
)
def test_top_level_lines_land_above_every_table(text):
    result = with_top_level(text, {"access": '"code"', "access_code_hash": '"h$1$2"'})
    parsed = tomllib.loads(result)
    assert parsed["access"] == "code" and parsed["access_code_hash"] == "h$1$2"
    before = tomllib.loads(text)
    assert {k: v for k, v in parsed.items() if not k.startswith("access")} == {
        k: v for k, v in before.items() if not k.startswith("access")
    }


def test_a_layout_that_cannot_be_edited_safely_is_left_alone():
    with pytest.raises(ConfigError, match="not valid TOML"):
        with_top_level("[warm_pool\n", {"access": '"code"'})
    tricky = 'text = """\n[not a table]\naccess = 1\n"""\n'
    with pytest.raises(ConfigError, match="could not be placed safely"):
        with_top_level(tricky, {"access": '"code"'})


def test_the_settings_in_force_say_where_they_came_from(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('admin_token = "' + "t" * 40 + '"\n[warm_pool]\n"gh/a/b/HEAD" = 3\n')
    loaded = load_settings(path, environ={"MINIBINDER_BUILD_TIMEOUT": "90"})
    text = effective_toml(loaded, str(path))
    assert "build_timeout = 90  # environment MINIBINDER_BUILD_TIMEOUT" in text
    assert "max_age = 21600  # default" in text
    assert f'[warm_pool]  # file {path}\n"gh/a/b/HEAD" = 3' in text
    assert "t" * 40 not in text and "# admin_token = (set, 40 characters, not shown)" in text
    assert 'admin_bind = ""  # default (127.0.0.1:8586)' in text
    parsed = tomllib.loads(text)  # it is a settings file too
    assert parsed["build_timeout"] == 90 and parsed["warm_pool"] == {"gh/a/b/HEAD": 3}


def test_the_settings_in_force_note_a_pool_size_set_while_running(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[warm_pool]\n"gh/a/b/HEAD" = 3\n')
    note = 'in force instead: "gh/a/b/HEAD" = 0, set by the operator\'s page'
    text = effective_toml(load_settings(path), str(path), {"warm_pool": [note]})
    assert f'"gh/a/b/HEAD" = 3\n# {note}\n' in text
    assert tomllib.loads(text)["warm_pool"] == {"gh/a/b/HEAD": 3}


def test_install_service_trusts_the_ca_make_serve_passes_although_sudo_dropped_it(
    tmp_path, monkeypatch
):
    """`sudo` resets the environment, so MINIBINDER_EXTRA_CA_FILE (which `make serve` sets to
    the host's bundle) never reaches install-service: the settings file names the bundle."""
    import minibinder.cli.service as service

    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text("")
    monkeypatch.setattr(service, "HOST_CA_BUNDLE", bundle)
    monkeypatch.setattr(service, "CONFIG_PATH", tmp_path / "none.toml")  # no installed file
    monkeypatch.delenv("MINIBINDER_EXTRA_CA_FILE", raising=False)  # as sudo drops it
    settings = tmp_path / "etc" / "minibinder.toml"
    result = run(
        "install-service",
        "--unit",
        str(tmp_path / "x.service"),
        "--settings",
        str(settings),
        "--link",
        "",
    )
    assert result.exit_code == 0, result.output
    assert tomllib.loads(settings.read_text())["extra_ca_file"] == str(bundle)
    # A CA the operator names wins.
    other = tmp_path / "other.toml"
    named = run(
        "install-service",
        "--unit",
        str(tmp_path / "y.service"),
        "--settings",
        str(other),
        "--link",
        "",
        env={"MINIBINDER_EXTRA_CA_FILE": str(settings)},
    )
    assert named.exit_code == 0, named.output
    assert tomllib.loads(other.read_text())["extra_ca_file"] == str(settings)
