"""conda specs → Python package index requirements, table-driven."""

import pytest

from minibinder.builds.environments.envfile import parse_environment_file
from minibinder.builds.environments.pypi import pep440, translate
from minibinder.errors import BuildpackError


@pytest.mark.parametrize(
    "constraint, specifier, note",
    [
        ("", "", ""), ("*", "", ""),
        ("=1.2", "==1.2.*", ""), ("=1.2.*", "==1.2.*", ""),
        ("=1.2=py39_0", "==1.2.*", "build 'py39_0' dropped"),
        ("==1.2.3", "==1.2.3", ""), (">=1.2,<2", ">=1.2,<2", ""), ("!=1.5", "!=1.5", ""),
        ("~=1.2", "~=1.2", ""), (" 1.2.*", "==1.2.*", ""), (" 1.2", "==1.2", ""),
        (" 1.2 py39_0", "==1.2", "build 'py39_0' dropped"), (" >=1.2", ">=1.2", ""),
        (">=1.2.*", ">=1.2", ""),
        ("[version='>=1.2', build=x]", ">=1.2", ""),
        ("1.2|1.3", "", "version choice '1.2|1.3' has no PEP 440 form; any version"),
    ],
)  # fmt: skip
def test_version_specs(constraint, specifier, note):
    assert pep440(constraint) == (specifier, note)


@pytest.mark.parametrize("constraint", [">=", "1.2 a b", "=>1.2", ">=1.2;x"])
def test_unreadable_version_specs(constraint):
    with pytest.raises(BuildpackError, match="cannot read the version constraint"):
        pep440(constraint)


DATA_SCIENCE = """
channels: [conda-forge]
dependencies:
  - python=3.11
  - numpy
  - pandas>=2
  - matplotlib-base=3.8
  - bokeh
  - dask
  - scipy
  - ipywidgets
  - voila
  - py-opencv
  - pytorch
  - nodejs
  - pip
  - pip:
    - jupyter-server-proxy
"""


def test_a_data_science_environment():
    result = translate(parse_environment_file(DATA_SCIENCE, "environment.yml"))
    assert result.requirements == [
        "numpy",
        "pandas>=2",
        "matplotlib==3.8.*",
        "bokeh",
        "dask",
        "scipy",
        "ipywidgets",
        "voila",
        "opencv-python-headless",
        "torch",
    ]
    assert result.renamed == [
        ("matplotlib-base", "matplotlib"),
        ("py-opencv", "opencv-python-headless"),
        ("pytorch", "torch"),
    ]
    assert result.skipped == ["python", "nodejs", "pip"]
    assert "renamed matplotlib-base → matplotlib" in result.summary()


def test_conda_only_packages_are_all_named():
    env = parse_environment_file(
        "dependencies: [numpy, r-base, r-ggplot2, cudatoolkit=11, mkl]", "binder/environment.yml"
    )
    with pytest.raises(BuildpackError) as error:
        translate(env)
    assert "binder/environment.yml" in str(error.value)
    assert "r-base, r-ggplot2, cudatoolkit, mkl" in str(error.value)
