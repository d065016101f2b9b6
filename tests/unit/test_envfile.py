"""conda environment files: every shape of dependency line repo2docker accepts, and bad input."""

import pytest

from minibinder.builds.environments.envfile import (
    check_channel,
    is_explicit,
    parse_conda_lock,
    parse_environment_file,
    parse_explicit,
)
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
        ("python", "=3.10"),
        ("numpy", ">=1.24,<2"),
        ("matplotlib-base", " 3.8.*"),
        ("pandas", "=2.1=py310_0"),
        ("scipy", "[version='>=1.10']"),
        ("3to2", ""),
        ("pip", ""),
    ]
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


SHA = "a" * 64
MD5 = "b" * 32


def test_explicit_lists():
    text = (
        "# This file may be used to create an environment using:\n@EXPLICIT\n"
        f"https://conda.anaconda.org/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2#{MD5}\n"
        f"https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h_0.conda#sha256:{SHA}\n"
    )
    assert is_explicit(text) and not is_explicit("dependencies: [numpy]")
    six, numpy = parse_explicit(text, "conda-linux-64.lock")
    assert (six.subdir, six.filename, six.md5) == ("noarch", "six-1.16.0-pyh6c4a22f_0.tar.bz2", MD5)
    assert numpy.sha256 == SHA and numpy.subdir == "linux-64"


@pytest.mark.parametrize(
    "line, message",
    [
        ("file:///tmp/x-1-0.conda", "file scheme"),
        ("https://u:p@h.example/c/noarch/x-1-0.conda", "credentials"),
        ("https://h.example/c/noarch/x.txt", "is not the URL of a conda package"),
        ("numpy", "is not the URL of a conda package"),
        ("https://h.example/c/noarch/x-1-0.conda#zz", "neither an MD5 nor a SHA-256"),
    ],
)
def test_bad_explicit_lines(line, message):
    with pytest.raises(BuildpackError, match=message):
        parse_explicit(f"@EXPLICIT\n{line}\n", "conda-linux-64.lock")


CONDA_LOCK = f"""
version: 1
metadata: {{platforms: [linux-64, osx-arm64]}}
package:
- name: numpy
  version: 1.26.4
  manager: conda
  platform: linux-64
  url: https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h_0.conda
  hash: {{md5: {MD5}, sha256: {SHA}}}
  category: main
  optional: false
- name: numpy
  version: 1.26.4
  manager: conda
  platform: osx-arm64
  url: https://conda.anaconda.org/conda-forge/osx-arm64/numpy-1.26.4-py311h_0.conda
  hash: {{md5: {MD5}}}
- name: requests
  version: 2.31.0
  manager: pip
  platform: linux-64
  url: https://files.pythonhosted.org/x/requests-2.31.0-py3-none-any.whl
  hash: {{sha256: {SHA}}}
"""


def test_conda_lock_files():
    conda, pip = parse_conda_lock(CONDA_LOCK, "binder/conda-lock.yml", "linux-64")
    assert [p.filename for p in conda] == ["numpy-1.26.4-py311h_0.conda"]
    assert conda[0].sha256 == SHA and pip == ("requests==2.31.0",)
    with pytest.raises(BuildpackError, match="holds no conda packages for linux-aarch64"):
        parse_conda_lock(CONDA_LOCK, "binder/conda-lock.yml", "linux-aarch64")
    with pytest.raises(BuildpackError, match="is not a conda-lock file"):
        parse_conda_lock("dependencies: []", "binder/conda-lock.yml", "linux-64")
