"""The environment step's decisions, with the conda side faked: conda path, the PyPI fallback,
the failure setting, Python versions, and what the build log says."""

import pytest

from minibinder.builds import prepare
from minibinder.builds.buildpacks import RepoConfig, plan_build
from minibinder.builds.environments.conda import (
    ChannelUnreachable,
    EnvironmentImage,
    channel_urls,
    check_channel_host,
)
from minibinder.builds.environments.envfile import parse_environment_file
from minibinder.errors import BuildError, BuildpackError
from minibinder.settings_load import load_config

CONFIG = load_config(overrides={"base_images": {"3.11": "base:3.11", "3.13": "base:3.13"}})
ENV = """
channels: [conda-forge]
dependencies:
  - python=3.12
  - matplotlib-base
  - numpy>=1.26
  - pip:
    - jupyter-server-proxy
    - -e .
"""


def plan_for(files, config=CONFIG, folder="binder"):
    return plan_build(RepoConfig(folder, {k: v.encode() for k, v in files.items()}), config)


def run(plan, config=CONFIG, image=None, error=None):
    calls = []

    def fake_image(specs, channels, base_image, config, docker, scratch):
        calls.append((list(specs), list(channels), base_image))
        if error:
            raise error
        yield from ()
        return image

    original = prepare.environment_image
    prepare.environment_image = fake_image
    try:
        lines = [event.message for event in prepare.prepare_environment(plan, config, None, None)]
    finally:
        prepare.environment_image = original
    return lines, calls


def test_the_conda_path_starts_from_the_environment_image():
    plan = plan_for({"environment.yml": ENV})
    lines, calls = run(plan, image=EnvironmentImage("minibinder-conda-env:abc", True, 42, "solved"))
    assert calls == [
        (
            ["python 3.12.*", "matplotlib-base", "numpy >=1.26"],
            ["https://conda.anaconda.org/conda-forge"],
            "base:3.11",
        )
    ]
    assert plan.base_image == "minibinder-conda-env:abc"
    assert lines == [
        "binder/environment.yml: conda environment from "
        "https://conda.anaconda.org/conda-forge (42 packages, solved, Jupyter runs "
        "from it)\n"
    ]
    assert plan.dependency_files["environment-pip.txt"] == b"jupyter-server-proxy\n"
    assert plan.post_repo_steps[0].startswith("cd binder && uv pip install --python python -e .")


def test_no_channel_and_pypi_fallback_installs_from_the_index():
    plan = plan_for({"environment.yml": ENV})
    lines, _ = run(plan, error=ChannelUnreachable("https://conda.anaconda.org/conda-forge", "dns"))
    assert plan.base_image == "base:3.13"  # python=3.12 is not here: the nearest newer
    assert plan.dependency_files["environment-pypi.txt"] == b"matplotlib\nnumpy>=1.26\n"
    assert plan.dependency_files["environment-pip.txt"] == b"jupyter-server-proxy\n"
    assert lines[0].startswith(
        "binder/environment.yml: conda channel https://conda.anaconda.org/conda-forge "
        "unreachable: dns; installing its packages from the Python package index instead "
        '(conda_fallback = "pypi"): renamed matplotlib-base → matplotlib; already in the '
        "image: python"
    )
    assert lines[1].startswith("WARNING: binder/environment.yml asks for Python 3.12")


def test_no_channel_and_fail_setting_is_a_clear_error():
    config = load_config(overrides={"conda_fallback": "fail"})
    plan = plan_for({"environment.yml": ENV}, config)
    with pytest.raises(
        BuildError,
        match=r"conda channel https://c\.example/x unreachable: "
        r"refused\. .*conda_fallback = \"fail\"",
    ):
        run(plan, config, error=ChannelUnreachable("https://c.example/x", "refused"))


def test_conda_only_packages_fail_on_the_pypi_path():
    plan = plan_for({"environment.yml": "dependencies: [numpy, r-base]"})
    with pytest.raises(BuildpackError, match="exist only as conda packages.*: r-base"):
        run(plan, error=ChannelUnreachable("https://c.example/x", "dns"))


def test_a_python_version_from_a_conda_channel():
    plan = plan_for({"runtime.txt": "python-3.10", "requirements.txt": "six"}, folder="")
    lines, calls = run(plan, image=EnvironmentImage("env:310", True, 30, "lock reused"))
    assert calls[0][0][0] == "python 3.10.*" and "ipykernel" in calls[0][0]
    assert plan.base_image == "env:310" and plan.python_version == "3.10"
    assert lines == [
        "Python 3.10 for runtime.txt: a conda environment (30 packages, lock reused)\n"
    ]


def test_a_python_version_without_a_channel_follows_python_fallback():
    plan = plan_for({"runtime.txt": "python-3.10"}, folder="")
    lines, _ = run(plan, error=ChannelUnreachable("https://conda.anaconda.org/conda-forge", "dns"))
    assert plan.base_image == "base:3.11"
    assert "which no base image provides; from a conda channel: conda channel" in lines[0]
    assert lines[1].startswith("WARNING: runtime.txt asks for Python 3.10")
    config = load_config(overrides={"python_fallback": "fail"})
    with pytest.raises(BuildpackError, match="python_fallback"):
        run(
            plan_for({"runtime.txt": "python-3.10"}, config, folder=""),
            config,
            error=ChannelUnreachable("x", "dns"),
        )


@pytest.mark.parametrize(
    "url, internal, allowed",
    [
        ("https://conda.anaconda.org/conda-forge", [], True),
        ("http://conda.anaconda.org/conda-forge", [], False),
        ("https://127.0.0.1/c", [], False), ("https://localhost/c", [], False),
        ("https://10.1.2.3/c", [], False), ("https://[::1]/c", [], False),
        ("https://169.254.169.254/c", [], False),
        ("http://127.0.0.1:8000/c", ["127.0.0.1"], True),
        ("https://mirror.lab/c", ["mirror.lab"], True), ("file:///srv/channel", [], False),
    ],
)  # fmt: skip
def test_channel_host_policy(url, internal, allowed):
    if allowed:
        check_channel_host(url, internal)
    else:
        with pytest.raises(BuildpackError, match="is not allowed"):
            check_channel_host(url, internal)


def test_channel_names_use_the_alias_and_the_operator_list_wins():
    config = load_config(overrides={"conda_channel_alias": "https://mirror.example/conda/"})
    mirror_url = "https://mirror.example/conda"
    assert channel_urls(["conda-forge", "bioconda"], config) == [
        f"{mirror_url}/conda-forge",
        f"{mirror_url}/bioconda",
    ]
    assert channel_urls([], config) == ["https://mirror.example/conda/conda-forge"]
    mirror = load_config(overrides={"conda_channels": ["file:///srv/conda-mirror"]})
    assert channel_urls(["conda-forge"], mirror) == ["file:///srv/conda-mirror"]
    with pytest.raises(BuildpackError, match="not allowed"):
        channel_urls(["https://192.168.1.5/c"], load_config())


def test_environment_file_parsing_feeds_the_plan():
    env = parse_environment_file("dependencies: [tinytool]", "environment.yml")
    assert [spec.match_spec for spec in env.specs] == ["tinytool"]


def test_an_unreachable_channel_is_named_as_the_operators_mirror():
    from minibinder.builds.environments.conda import channel_origin

    mirror = load_config(overrides={"conda_channels": ["https://mirror.lab/conda-forge/"]})
    assert channel_origin("https://mirror.lab/conda-forge", mirror) == (
        "the mirror set in conda_channels"
    )
    alias = load_config(overrides={"conda_channel_alias": "https://mirror.lab/c"})
    assert "conda_channel_alias" in channel_origin("https://mirror.lab/c/conda-forge", alias)
    assert channel_origin("https://conda.anaconda.org/conda-forge", load_config()) == ""
    error = ChannelUnreachable(
        "https://mirror.lab/conda-forge", "refused", "the mirror set in conda_channels"
    )
    assert str(error) == (
        "conda channel https://mirror.lab/conda-forge unreachable: refused "
        "(the mirror set in conda_channels)"
    )
    # On the package-index path, conda-only packages name the mirror that did not answer.
    plan = plan_for({"environment.yml": "dependencies: [numpy, r-base]"}, mirror)
    with pytest.raises(BuildpackError) as refused:
        run(plan, mirror, error=error)
    assert "conda channel https://mirror.lab/conda-forge unreachable: refused (the mirror set " in (
        str(refused.value)
    )
    assert "The operator's mirror (conda_channels) is the one to fix" in str(refused.value)
