"""Settings: defaults, TOML, environment overrides, errors naming the key, documentation."""

from pathlib import Path

import pytest

from minibinder.config import Config, fields, load_config
from minibinder.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_help_and_a_default():
    config = Config()
    for f in fields():
        assert f.metadata["help"].strip(), f.name
        assert getattr(config, f.name) is not None


def test_example_file_and_readme_document_every_setting():
    example = (ROOT / "config.example.toml").read_text()
    readme = (ROOT / "README.md").read_text()
    for f in fields():
        assert f"{f.name} =" in example or f"[{f.name}]" in example, f.name
        assert f"`{f.name}`" in readme, f.name


def test_example_file_loads_to_the_defaults():
    assert load_config(ROOT / "config.example.toml") == Config()


def test_toml_then_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        'build_timeout = 60\nallowed_clone_schemes = ["https", "git"]\n'
        '[base_images]\n"3.12" = "img:312"\n'
    )
    config = load_config(
        path, environ={"MINIBINDER_BUILD_TIMEOUT": "90", "MINIBINDER_ALLOW_DOCKERFILE": "no"}
    )
    assert config.build_timeout == 90
    assert config.allowed_clone_schemes == ["https", "git"]
    assert config.base_images == {"3.12": "img:312"}
    assert config.allow_dockerfile is False


@pytest.mark.parametrize(
    "toml, key",
    [
        ("build_timeout = -1", "build_timeout"),
        ("build_timeout = 'soon'", "build_timeout"),
        ("clone_max_size = 'huge'", "clone_max_size"),
        ("installer = 'conda'", "installer"),
        ("allow_dockerfile = 'yes'", "allow_dockerfile"),
        ("spec_deny = ['(']", "spec_deny"),
        ("allowed_clone_schemes = 'https'", "allowed_clone_schemes"),
        ("image_prefix = 'Bad Prefix'", "image_prefix"),
        ("[base_images]\npython3 = 'x'", "base_images"),
        ("no_such_setting = 1", "no_such_setting"),
        ("build_timeout = ", "not valid TOML"),
    ],
)
def test_errors_name_the_key(tmp_path, toml, key):
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError, match=key):
        load_config(path)


def test_environment_errors_name_the_key():
    with pytest.raises(ConfigError, match="build_timeout"):
        load_config(environ={"MINIBINDER_BUILD_TIMEOUT": "ten"})


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("/nonexistent/minibinder.toml")


def test_sizes():
    config = load_config(overrides={"build_memory_limit": "1.5G", "clone_max_size": "100M"})
    assert config.build_memory_limit == int(1.5 * 2**30)
    assert config.clone_max_size == 100 * 2**20


def test_build_hash_follows_build_settings_only():
    base = Config().build_hash()
    assert load_config(overrides={"build_timeout": 5}).build_hash() == base
    assert load_config(overrides={"installer": "pip"}).build_hash() != base


def test_generated_docs_are_up_to_date():
    from minibinder.settings_docs import example_toml, markdown_table

    assert (ROOT / "config.example.toml").read_text() == example_toml(), (
        "run `minibinder settings > config.example.toml`"
    )
    assert markdown_table() in (ROOT / "README.md").read_text(), (
        "paste `minibinder settings --markdown` into the README"
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"bind": "8585"}, "bind: expected host:port"),
        ({"bind": "0.0.0.0:99999"}, "bind: expected host:port"),
        ({"admin_bind": "localhost"}, "admin_bind: expected host:port"),
        ({"bind": "0.0.0.0:8585", "admin_bind": "127.0.0.1:8585"}, "admin_bind: .* own port"),
    ],
)
def test_listener_addresses_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=settings)


def test_the_operators_listener_defaults_to_the_next_port():
    assert load_config(overrides={"bind": "0.0.0.0:9000"}).admin_address == "0.0.0.0:9001"
