"""Settings: defaults, TOML, environment overrides, errors naming the key, documentation."""

from pathlib import Path

import pytest

from minibinder.config import Config, fields
from minibinder.errors import ConfigError
from minibinder.settings_load import load_config

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
        'build_timeout = 60\nallowed_clone_schemes = ["https", "git"]\ndefault_python = "3.12"\n'
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


@pytest.mark.parametrize(
    "settings, names",
    [
        ({"base_images": {"3.12": "img:312"}}, ("base_images", "default_python")),
        ({"default_python": "3.13"}, ("base_images", "default_python")),
        ({"image_gc_high": 150}, ("image_gc_high",)),
        ({"image_gc_low": 90}, ("image_gc_low", "image_gc_high")),
        ({"image_gc_high": 60, "image_gc_low": 70}, ("image_gc_low", "image_gc_high")),
        ({"session_memory_reservation": "3G"}, ("session_memory_reservation",
                                                "session_memory_limit")),
        ({"cull_warning": 600}, ("cull_warning", "idle_timeout")),
        ({"idle_timeout": 60}, ("cull_warning", "idle_timeout")),
        ({"max_age": 100}, ("cull_warning", "max_age")),
        ({"cors_allow_origin": "https://thebe.example.org/"}, ("cors_allow_origin",)),
        ({"jupyter_allow_origin": "https://book.example.org/"}, ("jupyter_allow_origin",)),
        ({"cors_allow_origin": "thebe.example.org"}, ("cors_allow_origin",)),
    ],
)  # fmt: skip
def test_settings_that_contradict_each_other_are_refused_naming_both(settings, names):
    with pytest.raises(ConfigError) as refused:
        load_config(overrides=settings)
    for name in names:
        assert name in str(refused.value)


def test_consistent_neighbours_of_the_refused_values_load():
    config = load_config(
        overrides={
            "base_images": {"3.12": "img:312"},
            "default_python": "3.12",
            "image_gc_high": 100,
            "image_gc_low": 100,
            "cull_warning": 5,
            "idle_timeout": 6,
            "max_age": 6,
            "session_memory_reservation": "2G",
            "cors_allow_origin": "https://thebe.example.org:8443",
            "jupyter_allow_origin": "*",
        }
    )
    assert config.base_images[config.default_python] == "img:312"


def test_a_trailing_slash_on_an_origin_says_what_to_write():
    with pytest.raises(ConfigError, match="write 'https://thebe.example.org'"):
        load_config(overrides={"cors_allow_origin": "https://thebe.example.org/"})


@pytest.mark.parametrize(
    "variable, suggestion",
    [
        ("MINIBINDER_ADMIN_BND", "did you mean MINIBINDER_ADMIN_BIND?"),
        ("MINIBINDER_bind", "did you mean MINIBINDER_BIND?"),
        ("MINIBINDER_CONFG", "did you mean MINIBINDER_CONFIG?"),
        ("MINIBINDER_WHATEVER", "MINIBINDER_NAME"),
    ],
)
def test_unknown_environment_variables_are_an_error_with_the_closest_setting(variable, suggestion):
    with pytest.raises(ConfigError, match=f"{variable}: no such setting") as refused:
        load_config(environ={variable: "127.0.0.1:9000"})
    assert suggestion in str(refused.value)


def test_variables_that_are_not_settings_and_other_prefixes_pass():
    environ = {
        "MINIBINDER_CONFIG": "/etc/minibinder.toml",
        "MINIBINDER_DOCKERD_LOG": "/tmp/l",
        "MINIBINDERX": "1",
        "HOME": "/root",
        "MINIBINDER_BIND": "0.0.0.0:9000",
    }
    assert load_config(environ=environ).bind == "0.0.0.0:9000"


def test_file_typos_say_did_you_mean(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('admin_bnd = "127.0.0.1:9000"\n')
    with pytest.raises(ConfigError, match=r"admin_bnd: unknown setting .*did you mean admin_bind"):
        load_config(path)
    with pytest.raises(
        ConfigError, match=r"cull_warnin: unknown setting.*did you mean cull_warning"
    ):
        load_config(overrides={"cull_warnin": 5})


def test_a_setting_appended_below_a_table_is_said_to_sit_inside_it(tmp_path):
    from minibinder.identity import hash_code

    path = tmp_path / "c.toml"
    path.write_text(
        'bind = "127.0.0.1:9000"\n[warm_pool]\n"gh/org/workshop/HEAD" = 2\n'
        f'access = "code"\naccess_code_hash = "{hash_code("sesame", iterations=1000)}"\n'
    )
    with pytest.raises(
        ConfigError,
        match=r"access: .* inside the \[warm_pool\] table.*move it "
        r"above \[warm_pool\]",
    ):
        load_config(path)


def test_a_code_hash_whose_dollar_signs_a_shell_ate_says_so():
    from minibinder.identity import hash_code

    stored = hash_code("sesame", salt="a1b2", iterations=1000)
    eaten = "pbkdf2_sha256" + "000"  # "pbkdf2_sha256$1000$a1b2$…" in double quotes: $1 is empty
    with pytest.raises(ConfigError, match=r"access_code_hash: .*lost its \$ signs.*double quotes"):
        load_config(environ={"MINIBINDER_ACCESS_CODE_HASH": eaten})
    with pytest.raises(ConfigError, match=r"access_code_hash: expected the hash"):
        load_config(overrides={"access_code_hash": "sesame"})
    config = load_config(
        environ={"MINIBINDER_ACCESS": "code", "MINIBINDER_ACCESS_CODE_HASH": stored}
    )
    assert config.access_code_hash == stored


def test_settings_say_where_each_value_came_from(tmp_path):
    from minibinder.settings_load import load_settings

    path = tmp_path / "c.toml"
    path.write_text("build_timeout = 60\nclone_timeout = 30\n")
    loaded = load_settings(
        path, environ={"MINIBINDER_CLONE_TIMEOUT": "90"}, overrides={"bind": "127.0.0.1:9000"}
    )
    assert loaded.sources["build_timeout"] == f"file {path}"
    assert loaded.sources["clone_timeout"] == "environment MINIBINDER_CLONE_TIMEOUT"
    assert loaded.sources["bind"] == "given"
    assert loaded.sources["max_age"] == "default"
    assert loaded.config.clone_timeout == 90


def readme_settings_snippets() -> list[tuple[str, str]]:
    """`name = value` the README shows for a setting: in backticks (also wrapped over lines),
    and on the lines of its code blocks (comments included)."""
    import re

    readme = (ROOT / "README.md").read_text()
    names = "|".join(f.name for f in fields())
    found = [
        (m.group(1), " ".join(m.group(2).split()))
        for m in re.finditer(rf"`({names}) =\s+([^`]+)`", readme)
    ]
    for block in re.findall(r"```\w*\n(.*?)```", readme, re.DOTALL):
        for line in block.splitlines():
            m = re.match(rf"\s*#?\s*({names}) = (.+)$", line)
            if m:
                found.append((m.group(1), m.group(2).strip()))
    return found


def test_the_readmes_settings_snippets_are_valid_toml_and_valid_values():
    import tomllib

    snippets = readme_settings_snippets()
    assert (
        "base_images",
        '{"3.11" = "minibinder-base:py3.11", "3.13" = "minibinder-base:py3.13"}',
    ) in snippets
    assert any(name == "warm_pool" for name, _ in snippets)
    by_name = {f.name: f for f in fields()}
    for name, value in snippets:
        try:
            parsed = tomllib.loads(f"{name} = {value}")[name]
        except tomllib.TOMLDecodeError as error:
            raise AssertionError(f"README: `{name} = {value}` is not TOML: {error}") from None
        by_name[name].metadata["kind"].read(name, parsed, False)


def test_session_ulimits_are_named_limits_with_counts():
    config = load_config(environ={}, overrides={"session_ulimits": {"nofile": 20000}})
    assert config.session_ulimits == {"nofile": 20000}
    read = load_config(environ={"MINIBINDER_SESSION_ULIMITS": "nofile=20000,nproc=32768"})
    assert read.session_ulimits == {"nofile": 20000, "nproc": 32768}
    with pytest.raises(ConfigError, match="session_ulimits: keys are limits among"):
        load_config(environ={}, overrides={"session_ulimits": {"files": 10}})
    with pytest.raises(ConfigError, match="session_ulimits"):
        load_config(environ={}, overrides={"session_ulimits": {"nofile": -1}})
