"""Which Python a repository gets: requests read from every file, and the fallback rule."""

import pytest

from minibinder.builds.environments.pythons import choose_python, parse_request
from minibinder.errors import BuildpackError

AVAILABLE = ["3.11", "3.13"]


@pytest.mark.parametrize(
    "text, allowed, refused",
    [
        ("3.10", ["3.10"], ["3.11"]), ("==3.10.*", ["3.10"], ["3.11"]), ("=3.12", ["3.12"], []),
        ("3.10.4", ["3.10"], ["3.11"]), (">=3.9", ["3.9", "3.13"], ["3.8"]),
        (">=3.9,<3.12", ["3.11"], ["3.12"]), ("<3.12.5", ["3.12"], ["3.13"]),
        (">3.11", ["3.12"], ["3.11"]), ("<=3.10", ["3.10"], ["3.11"]), ("~=3.9", ["3.13"], ["3.8"]),
        ("3", ["3.6", "3.13"], ["2.7"]), ("2", ["2.7"], ["3.11"]),
    ],
)  # fmt: skip
def test_requests(text, allowed, refused):
    request = parse_request(text, "runtime.txt")
    for version in allowed:
        assert request.allows(tuple(int(p) for p in version.split(".")))
    for version in refused:
        assert not request.allows(tuple(int(p) for p in version.split(".")))


@pytest.mark.parametrize("text", ["", "*"])
def test_no_request(text):
    assert parse_request(text, "x") is None


def test_unreadable_request():
    with pytest.raises(BuildpackError, match="cannot read the Python version 'three'"):
        parse_request("three", "Pipfile")


def choose(text, fallback="newer"):
    return choose_python(parse_request(text, "runtime.txt"), AVAILABLE, "3.11", fallback)


def test_exact_versions_and_ranges_take_a_base_image():
    assert choose("3.13").version == "3.13" and choose("3.13").warning == ""
    assert choose(">=3.12").version == "3.13"
    assert choose(">=3.9").version == "3.11"  # the default when it fits


def test_the_nearest_newer_version_with_a_visible_warning():
    choice = choose("3.10")
    assert choice.version == "3.11"
    assert "runtime.txt asks for Python 3.10" in choice.warning
    assert 'using Python 3.11 instead (python_fallback = "newer")' in choice.warning
    assert choose("3.12").version == "3.13"


def test_fail_says_what_is_available():
    with pytest.raises(BuildpackError, match=r"provides only 3.11, 3.13 \(python_fallback"):
        choose("3.10", fallback="fail")


def test_nothing_newer_or_another_major_fails_even_with_newer():
    with pytest.raises(BuildpackError, match="asks for Python 3.14"):
        choose("3.14")
    with pytest.raises(BuildpackError, match="asks for Python 2.7"):
        choose("2.7")
