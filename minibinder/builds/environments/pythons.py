"""Which Python a repository gets (pure): what it asks for, read from runtime.txt, a Pipfile,
pyproject's requires-python or an environment file's pin, against the versions this server has.

Exact when a base image for the version is configured; otherwise the caller may try a conda
channel; failing that, `python_fallback` decides: the nearest newer version with a warning
("newer"), or a clear error ("fail").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import BuildpackError

Version = tuple[int, int]
_CLAUSE = re.compile(r"^\s*(==|>=|<=|~=|!=|>|<|=)?\s*v?(\d+)(?:\.(\d+|\*))?(?:\.[\d*]+)*\s*$")


def parse_version(text: str) -> Version:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def show(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class PythonRequest:
    """What a repository asked for: one minor version, or a range of them."""

    source: str  # "runtime.txt", "Pipfile", "pyproject.toml requires-python", "environment.yml"
    text: str  # as written, for messages
    exact: Version | None = None
    minimum: Version | None = None
    maximum: Version | None = None  # inclusive
    below: Version | None = None  # exclusive

    def allows(self, version: Version) -> bool:
        if self.exact is not None:
            return version == self.exact
        return (
            (self.minimum is None or version >= self.minimum)
            and (self.maximum is None or version <= self.maximum)
            and (self.below is None or version < self.below)
        )


def parse_request(text: str, source: str) -> PythonRequest | None:
    """Read a version specifier (`3.10`, `==3.10.*`, `>=3.9,<3.13`, conda's `=3.10`).

    A bare major (`3`) asks for any version of it; None when nothing is pinned at all.
    """
    value = text.strip()
    if not value or value in ("*", "python"):
        return None
    minimum: Version | None = None
    maximum: Version | None = None
    below: Version | None = None
    exact: Version | None = None
    for clause in value.split(","):
        match = _CLAUSE.match(clause)
        if not match:
            raise BuildpackError(f"{source}: cannot read the Python version {value!r}")
        operator, major, minor = match.group(1) or "", int(match.group(2)), match.group(3)
        if minor in (None, "*"):
            if operator in ("", "==", "="):  # "3" or "2.*": any version of that major
                minimum, below = (major, 0), (major + 1, 0)
                continue
            minor_number = 0
        else:
            minor_number = int(minor)
        version = (major, minor_number)
        patch_given = clause.count(".") >= 2  # `<3.12.5` still allows 3.12
        if operator in ("", "==", "=") or (operator == "~=" and patch_given):
            exact = version
        elif operator in (">=", "~="):
            minimum = version
        elif operator == ">":
            minimum = version if patch_given else (major, minor_number + 1)
        elif operator == "<=":
            maximum = version
        elif operator == "<":
            maximum, below = (version, None) if patch_given else (None, version)
    if exact is None and minimum is None and maximum is None and below is None:
        return None
    return PythonRequest(source, value, exact=exact, minimum=minimum, maximum=maximum, below=below)


@dataclass(frozen=True)
class PythonChoice:
    version: str  # "X.Y", a key of base_images
    warning: str = ""


def choose_python(
    request: PythonRequest | None, available: list[str], default: str, fallback: str
) -> PythonChoice:
    """The base image version for a request; `fallback` is "newer" or "fail"."""
    versions = sorted(parse_version(v) for v in available)
    if request is None:
        return PythonChoice(default)
    if request.allows(parse_version(default)):
        return PythonChoice(default)
    fitting = [v for v in versions if request.allows(v)]
    if fitting:
        return PythonChoice(show(fitting[0] if request.exact is None else request.exact))
    listed = ", ".join(show(v) for v in versions)
    wanted = request.exact or request.minimum or (0, 0)
    newer = [v for v in versions if v > wanted and v[0] == wanted[0]]  # never across a major
    if fallback == "newer" and newer:
        chosen = show(newer[0])
        return PythonChoice(
            chosen,
            f"WARNING: {request.source} asks for Python {request.text}, which this server does "
            f"not provide (it has {listed}); using Python {chosen} instead "
            f'(python_fallback = "newer"). Most code runs unchanged; pin a provided version '
            "to silence this warning.",
        )
    raise BuildpackError(
        f"{request.source} asks for Python {request.text}, but this server provides only "
        f"{listed}"
        + ("" if fallback == "newer" else ' (python_fallback = "fail")')
        + "; operators add versions with base_images (see `minibinder base-image --help`)"
    )
