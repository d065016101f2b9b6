"""A conda environment file's packages as Python package index requirements (pure), for hosts
no conda channel answers: names mapped by the shipped table (conda_to_pypi.toml), conda version
specs translated to PEP 440, packages with no PyPI twin collected so the error can name them."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from ...errors import BuildpackError
from .envfile import CondaEnvironment, CondaSpec

_VERSION = r"[0-9A-Za-z_.!+*]+"
_BRACKET_VERSION = re.compile(r"version\s*=\s*['\"]([^'\"]+)['\"]")


@dataclass(frozen=True)
class NameTable:
    renamed: dict[str, str]
    provided: frozenset[str]
    conda_only: frozenset[str]
    conda_only_prefixes: tuple[str, ...]

    def conda_only_name(self, name: str) -> bool:
        return name in self.conda_only or name.startswith(self.conda_only_prefixes)


@cache
def name_table() -> NameTable:
    data = tomllib.loads(
        resources.files(__package__).joinpath("conda_to_pypi.toml").read_text("utf-8")
    )
    return NameTable(
        {k.lower(): v for k, v in data["renamed"].items()},
        frozenset(data["provided"]["names"]),
        frozenset(data["conda_only"]["names"]),
        tuple(data["conda_only"]["prefixes"]),
    )


def pep440(constraint: str) -> tuple[str, str]:
    """A conda version constraint as a PEP 440 specifier, and a note when something was lost.

    `=1.2` means 1.2.*; `1.2` (spaced) means ==1.2; build strings are dropped; `|` (either
    version) cannot be said in PEP 440, so the constraint is dropped with a note.
    """
    rest = constraint.strip()
    if not rest or rest == "*":
        return "", ""
    if rest.startswith("["):
        found = _BRACKET_VERSION.search(rest)
        return pep440(found.group(1)) if found else ("", "")
    if "|" in rest:
        return "", f"version choice {rest!r} has no PEP 440 form; any version"
    note = ""
    if rest.startswith("=") and not rest.startswith("=="):
        version, _, build = rest[1:].partition("=")
        if not re.fullmatch(_VERSION, version):
            raise BuildpackError(f"cannot read the version constraint {constraint!r}")
        note = f"build {build!r} dropped" if build else ""
        return f"=={version.rstrip('.*')}.*", note
    parts = rest.split()
    if len(parts) == 2:  # "1.2 py39_0": a version and a build string
        rest, note = parts[0], f"build {parts[1]!r} dropped"
    elif len(parts) > 2:
        raise BuildpackError(f"cannot read the version constraint {constraint!r}")
    clauses = []
    for clause in rest.split(","):
        clause = clause.strip()
        match = re.fullmatch(rf"(==|>=|<=|!=|~=|>|<)?({_VERSION})", clause)
        if not match:
            raise BuildpackError(f"cannot read the version constraint {constraint!r}")
        operator, version = match.group(1) or "==", match.group(2)
        if version.endswith("*") and operator not in ("==", "!="):
            version = version.rstrip(".*")
        clauses.append(f"{operator}{version}")
    return ",".join(clauses), note


@dataclass
class PypiTranslation:
    requirements: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (conda name, PyPI name)
    skipped: list[str] = field(default_factory=list)  # provided by the image already
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.renamed:
            parts.append("renamed " + ", ".join(f"{a} → {b}" for a, b in self.renamed))
        if self.skipped:
            parts.append("already in the image: " + ", ".join(self.skipped))
        parts += self.notes
        return "; ".join(parts)


def translate(
    environment: CondaEnvironment,
    table: NameTable | None = None,
    unreachable: str = "no conda channel answers",
    mirror: bool = False,
) -> PypiTranslation:
    """The environment's conda packages (not its `pip:` lines) as requirement lines.

    Raises BuildpackError naming every package that exists only on conda, with `unreachable`
    (which channel did not answer, and why) and, when the operator set a mirror
    (`mirror`), that it is the mirror to look at.
    """
    table = table or name_table()
    result = PypiTranslation()
    missing = [spec.name for spec in environment.specs if table.conda_only_name(spec.name)]
    if missing:
        advice = (
            "The operator's mirror (conda_channels) is the one to fix"
            if mirror
            else "Ask the operator for a conda channel or mirror (conda_channels)"
        )
        raise BuildpackError(
            f"{environment.where}: {unreachable}, and these packages exist only as conda "
            f"packages, not on the Python package index: {', '.join(missing)}. {advice}, or "
            "remove them."
        )
    for spec in environment.specs:
        line = _requirement(spec, table, result)
        if line:
            result.requirements.append(line)
    return result


def _requirement(spec: CondaSpec, table: NameTable, result: PypiTranslation) -> str:
    if spec.name in table.provided:
        result.skipped.append(spec.name)
        return ""
    name = table.renamed.get(spec.name, spec.name)
    if name != spec.name:
        result.renamed.append((spec.name, name))
    try:
        version, note = pep440(spec.constraint)
    except BuildpackError as error:
        raise BuildpackError(f"{spec.line!r}: {error}") from None
    if note:
        result.notes.append(f"{spec.name}: {note}")
    return f"{name}{version}"
