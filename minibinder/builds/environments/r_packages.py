"""Where a repository's R packages come from (pure): the names install.R's `install.packages`
calls and DESCRIPTION's dependencies ask for, and, when the R package repository does not
answer, Debian's `r-cran-<name>` binaries instead (`r_package_fallback`).

Debian packages CRAN's packages as `r-cran-` plus the name in lower case (data.table →
r-cran-data.table); which of them the base's release has is known only to its apt, so the build
step that installs them asks apt first and fails naming every package it lacks at once. The
installation scripts still run afterwards, with `install.packages` answering from what Debian
installed (a call asking for anything else fails, naming it), so the rest of install.R runs
as written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ...errors import BuildpackError
from .r_runtime import BASE_PACKAGES, FROM_DEBIAN

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]")
_CALL = re.compile(r"(?<![\w.])(?:utils:::?)?install\.packages\s*\(")
_STRING = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*""", re.DOTALL)


@dataclass(frozen=True)
class RPackages:
    """What a repository's R installation scripts ask the package repository for."""

    where: tuple[str, ...]  # the files that ask: "binder/install.R", "DESCRIPTION"
    names: tuple[str, ...]  # package names, in order, each once
    unread: tuple[str, ...] = ()  # install.packages calls whose packages are not literal


def debian_name(package: str) -> str:
    """Debian's binary package of a CRAN package: `r-cran-` and the name in lower case."""
    return f"r-cran-{package.lower()}"


def _without_comments(text: str) -> str:
    """R source with `#` comments blanked out (a `#` inside a string stays)."""
    out, quote, index = [], "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                out.append(text[index : index + 2])
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char == "#":
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose `(` is just before `start`, as source text,
    and the index after its `)`."""
    arguments, depth, quote, begin, index = [], 0, "", start, start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                arguments.append(text[begin:index])
                return [a.strip() for a in arguments if a.strip()], index + 1
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append(text[begin:index])
            begin = index + 1
        index += 1
    raise BuildpackError("an install.packages( call is not closed")


def _literal_names(argument: str) -> list[str] | None:
    """The names in `"x"` or `c("x", 'y')`; None for anything else (a variable, a paste)."""
    one = _STRING.fullmatch(argument)
    if one:
        return [one.group(1) if one.group(1) is not None else one.group(2)]
    vector = re.fullmatch(r"c\s*\((.*)\)", argument, re.DOTALL)
    if not vector:
        return None
    names = []
    for item in filter(str.strip, _split_top_level(vector.group(1))):
        found = _STRING.fullmatch(item)
        if not found:
            return None
        names.append(found.group(1) if found.group(1) is not None else found.group(2))
    return names


def _split_top_level(text: str) -> list[str]:
    arguments, _ = _arguments(text + ")", 0)
    return arguments


def parse_install_r(text: str, where: str) -> RPackages:
    """The packages install.R's `install.packages(...)` calls name (first argument or `pkgs =`,
    a string or `c()` of strings); calls with anything else are kept as `unread`, and local
    files (`repos = NULL`) are left to R. Base packages are not asked for."""
    source = _without_comments(text)
    names: list[str] = []
    unread: list[str] = []
    position = 0
    while True:
        call = _CALL.search(source, position)
        if call is None:
            break
        try:
            arguments, position = _arguments(source, call.end())
        except BuildpackError:
            raise BuildpackError(f"{where}: an install.packages( call is not closed") from None
        named = {}
        positional = []
        for argument in arguments:
            key = re.match(r"([A-Za-z_.][\w.]*)\s*=(?!=)\s*", argument)
            if key:
                named[key.group(1)] = argument[key.end() :].strip()
            else:
                positional.append(argument)
        if named.get("repos") == "NULL":
            continue  # a package file of the repository's own
        packages = named.get("pkgs", positional[0] if positional else "")
        found = _literal_names(packages)
        if found is None or not all(_NAME.fullmatch(name) for name in found):
            unread.append(" ".join(source[call.start() : position].split()))
            continue
        names += [name for name in found if name not in BASE_PACKAGES and name not in names]
    return RPackages((where,), tuple(names), tuple(unread))


def joined(first: RPackages | None, second: RPackages) -> RPackages:
    """Both files' packages, each once, in order."""
    if first is None:
        return second
    names = first.names + tuple(n for n in second.names if n not in first.names)
    return RPackages(first.where + second.where, names, first.unread + second.unread)


@dataclass(frozen=True)
class PackagesChoice:
    from_debian: bool
    notice: str = ""  # one line for the launch page when Debian's are used


def choose_r_packages(
    packages: RPackages,
    repository: str,
    problem: str,
    fallback: str,
    codename: str,
    r_from_builds: str = "",
) -> PackagesChoice:
    """From the repository when it answers (`problem` empty); else as `fallback` says:
    "debian" installs Debian's binaries (only beside Debian's own R: they are built for it),
    "fail" refuses the build."""
    if not problem:
        return PackagesChoice(False)
    files = " and ".join(packages.where)
    said = f"{files}: the R package repository {repository} does not answer ({problem})"
    if fallback != "debian":
        raise BuildpackError(
            f"{said}; this server does not install R packages from Debian instead "
            '(r_package_fallback = "fail")'
        )
    if r_from_builds:
        raise BuildpackError(
            f"{said}, and Debian's R packages are built for Debian's R, not for the R of "
            f"{r_from_builds} (r_builds); ask for Debian {codename}'s R or try again later"
        )
    mapped = ", ".join(f"{name} → {debian_name(name)}" for name in packages.names) or "none"
    unread = (
        f"; not read (they fail unless Debian's packages cover them): {'; '.join(packages.unread)}"
        if packages.unread
        else ""
    )
    return PackagesChoice(
        True,
        f"{said}; installing its R packages from Debian {codename or '(unknown release)'} "
        f'instead (r_package_fallback = "debian"; Debian\'s versions): {mapped}{unread}',
    )


def debian_packages_step(packages: RPackages, codename: str) -> str:
    """Root step: Debian's binaries of `packages`, after apt says it has every one (else one
    error naming all it lacks), and the list of them for the installation runner."""
    if not packages.names:  # only calls that could not be read: the runner names them
        return f"mkdir -p /etc/minibinder && : > {FROM_DEBIAN}"
    pairs = " ".join(shlex.quote(f"{name}={debian_name(name)}") for name in packages.names)
    debs = " ".join(shlex.quote(debian_name(name)) for name in packages.names)
    names = " ".join(shlex.quote(name) for name in packages.names)
    release = f"Debian {codename}" if codename else "this image's Debian release"
    lacking = shlex.quote(
        f"The R package repository does not answer, and {release} has no package for these R "
        'packages (r_package_fallback = "debian"):'
    )
    return " \\\n && ".join(
        [
            "apt-get update -qq",
            f'missing="" && for pair in {pairs}; do deb="${{pair#*=}}"; '
            'apt-cache show "$deb" >/dev/null 2>&1 || missing="$missing ${pair%%=*} (no $deb)"; '
            "done",
            f'if [ -n "$missing" ]; then echo {lacking}"$missing" >&2; exit 1; fi',
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {debs}",
            "apt-get clean && rm -rf /var/lib/apt/lists/*",
            f"mkdir -p /etc/minibinder && printf '%s\\n' {names} > {FROM_DEBIAN}",
        ]
    )
