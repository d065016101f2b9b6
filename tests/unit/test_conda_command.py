"""mamba/conda in images of conda environments: what the command understands, which channels it
asks, the files the environment image gets, and the stand-in when no channel answered."""

from __future__ import annotations

import json

import pytest

from minibinder.builds import prepare
from minibinder.builds.buildpacks import RepoConfig, plan_build, render_dockerfile
from minibinder.builds.environments.conda import ChannelUnreachable
from minibinder.builds.environments.conda_command import (
    Refused,
    Request,
    Settings,
    channel_urls,
    parse_arguments,
)
from minibinder.builds.environments.conda_shim import (
    NO_CONDA,
    rattler_version,
    unavailable_conda_step,
    write_conda_command,
)
from minibinder.settings_load import load_config

PREFIX = "/srv/conda/envs/notebook"
SETTINGS = Settings(PREFIX, ("http://mirror/conda-forge",), "https://conda.example", "0.28.0")


@pytest.mark.parametrize(
    "argv, action, specs, channels, yes",
    [
        (["install", "-y", "make"], "install", ["make"], [], True),
        (["install", "--yes", "-c", "conda-forge", "make=4.3", "-q"], "install", ["make=4.3"],
         ["conda-forge"], True),
        (["install", "-n", "notebook", "numpy>=1.26"], "install", ["numpy>=1.26"], [], False),
        (["install", "-p", PREFIX, "make"], "install", ["make"], [], False),
        (["uninstall", "-y", "make"], "remove", ["make"], [], True),
        (["upgrade", "--all", "-y"], "update", [], [], True),
        (["list"], "list", [], [], False),
        (["clean", "--all", "-y"], "clean", [], [], True),
        (["--version"], "version", [], [], False),
    ],
)  # fmt: skip
def test_what_the_command_understands(argv, action, specs, channels, yes):
    request = parse_arguments("mamba", argv, PREFIX)
    assert (request.action, request.specs, request.channels, request.yes) == (
        action,
        specs,
        channels,
        yes,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["create", "-n", "other", "python"], "`mamba create` is not supported here: "
         "minibinder's mamba does install, update, remove, list and clean in the notebook "
         f"environment ({PREFIX})"),
        (["env", "update", "-f", "environment.yml"], "`mamba env` is not supported here"),
        (["install", "-n", "other", "make"], f"this image has one conda environment, {PREFIX}"),
        (["install", "-p", "/opt/env", "make"], "mamba cannot install elsewhere"),
        (["install", "-y"], "name the packages to install: mamba install -y make"),
        ([], "say what to do"),
    ],
)  # fmt: skip
def test_what_it_refuses_says_what_works(argv, message):
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_arguments("mamba", argv, PREFIX)


def test_channels_named_with_c_come_first_under_the_alias():
    asked = Request("install", ["make"], ["conda-forge", "http://other/ch/"])
    assert channel_urls(asked, SETTINGS) == [
        "https://conda.example/conda-forge",
        "http://other/ch",
        "http://mirror/conda-forge",
    ]
    only = Request("install", ["make"], ["bioconda"], override_channels=True)
    assert channel_urls(only, SETTINGS) == ["https://conda.example/bioconda"]
    assert channel_urls(Request("install", ["make"]), SETTINGS) == ["http://mirror/conda-forge"]


def test_the_environment_image_gets_the_command_and_its_settings(tmp_path):
    prefix, tools = tmp_path / "prefix", tmp_path / "tools"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "conda").write_text("the environment's own conda\n")
    write_conda_command(tools, prefix, PREFIX, ["http://a/ch", "http://a/ch"], "https://alias")
    assert Settings.read(tools) == Settings(
        PREFIX, ("http://a/ch",), "https://alias", rattler_version()
    )
    assert (tools / "conda_command.py").read_text().startswith('"""`mamba` and `conda` inside')
    mamba = (prefix / "bin" / "mamba").read_text()
    assert (
        'exec /srv/venv/bin/python -I /srv/conda/minibinder/conda_command.py "$(basename' in mamba
    )
    assert (prefix / "bin" / "mamba").stat().st_mode & 0o111
    assert (prefix / "bin" / "conda").read_text() == "the environment's own conda\n"
    assert json.loads((tools / "settings.json").read_text())["prefix"] == PREFIX


def test_without_a_channel_mamba_and_conda_say_why():
    step = unavailable_conda_step("binder/environment.yml")
    assert "binder/environment.yml was installed from the Python package index because no " in step
    assert f"> {NO_CONDA}" in step and "tee /usr/local/bin/mamba /usr/local/bin/conda" in step
    assert "\n" not in step  # one RUN line


def test_the_pypi_fallback_plan_carries_the_stand_in():
    config = load_config()
    plan = plan_build(RepoConfig("", {"environment.yml": b"dependencies: [six]\n"}), config)

    def unreachable(*args, **kwargs):
        raise ChannelUnreachable("https://conda.example/conda-forge", "refused")
        yield

    original = prepare.environment_image
    prepare.environment_image = unreachable
    try:
        list(prepare.prepare_environment(plan, config, None, None))
    finally:
        prepare.environment_image = original
    assert "tee /usr/local/bin/mamba /usr/local/bin/conda" in render_dockerfile(plan)
