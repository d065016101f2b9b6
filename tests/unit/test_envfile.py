"""conda environment files: every shape of dependency line repo2docker accepts, and bad input."""

import pytest

from minibinder.build.environments.envfile import check_channel, parse_environment_file
from minibinder.errors import BuildpackError

WHERE = "binder/environment.yml"


def parse(text):
    return parse_environment_file(text, WHERE)


def test_a_typical_file():
    env = parse(
        """
name: my-env            # ignored
prefix: /opt/conda/x    # ignored
channels:
  - conda-forge
  - defaults
dependencies:
  - python=3.10
  - numpy>=1.24,<2
  - matplotlib-base 3.8.*
  - conda-forge::pandas=2.1=py310_0
  - scipy[version='>=1.10']
  - 3to2
  - pip
  - pip:
    - requests==2.31
    - -r requirements.txt
    - -e .
"""
    )
    assert env.channels == ("conda-forge", "defaults")
    assert [(s.name, s.constraint) for s in env.specs] == [
        ("python", "=3.10"), ("numpy", ">=1.24,<2"), ("matplotlib-base", " 3.8.*"),
        ("pandas", "=2.1=py310_0"), ("scipy", "[version='>=1.10']"), ("3to2", ""), ("pip", ""),
    ]  # fmt: skip
    assert env.pip == ("requests==2.31", "-r requirements.txt", "-e .")
    assert env.python_spec is not None and env.python_spec.constraint == "=3.10"


@pytest.mark.parametrize(
    "line, match_spec",
    [("numpy", "numpy"), ("numpy=1.26", "numpy 1.26.*"), ("numpy>=1.2", "numpy >=1.2"),
     ("numpy=1.26=py311_0", "numpy 1.26 py311_0"), ("numpy 1.2.*", "numpy 1.2.*"),
     ("NumPy", "numpy")],
)  # fmt: skip
def test_match_specs_as_the_solver_reads_them(line, match_spec):
    assert parse(f"dependencies: ['{line}']").specs[0].match_spec == match_spec


@pytest.mark.parametrize(
    "text", ["", "dependencies:", "channels: []\ndependencies: []\n", "name: only-a-name\n"]
)
def test_empty_files_are_empty_environments(text):
    assert parse(text).specs == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ("dependencies: [numpy\n", r"is not valid YAML \(line \d+\)"),
        ("- numpy\n", "must be a mapping"),
        ("dependencies: numpy\n", "`dependencies` must be a list"),
        ("channels: conda-forge\n", "`channels` must be a list"),
        ("dependencies: [--index-url=http://x]\n", "looks like a command-line option"),
        ("dependencies: ['-e .']\n", "looks like a command-line option"),
        ("dependencies: ['numpy; rm -rf /']\n", "is not a conda package spec"),
        ("dependencies: [{conda: [x]}]\n", "must be `pip:` with a list"),
        ("dependencies: [[a, b]]\n", "cannot read the dependency"),
        ("dependencies: [{pip: [null]}]\n", "cannot read the pip requirement"),
        ("channels: ['file:///etc']\ndependencies: []\n", "file scheme"),
        ("channels: ['https://u:p@mirror.example/c']\n", "must not contain credentials"),
        ("channels: ['../../x']\n", "is not a channel name"),
        ("channels: ['ftp://mirror.example/c']\n", "ftp scheme"),
        ("dependencies: [" + ", ".join(f"p{i}" for i in range(2001)) + "]\n", "at most 2000"),
    ],
)
def test_bad_files_get_a_clear_error(text, message):
    with pytest.raises(BuildpackError, match=message):
        parse(text)


@pytest.mark.parametrize(
    "channel, expected",
    [("conda-forge", "conda-forge"), ("bioconda", "bioconda"), ("pytorch/label/nightly",
     "pytorch/label/nightly"), ("https://mirror.example/conda-forge/", "https://mirror.example/conda-forge")],
)  # fmt: skip
def test_channels(channel, expected):
    assert check_channel(channel, WHERE) == expected
