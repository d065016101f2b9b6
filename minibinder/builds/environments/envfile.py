"""conda environment files (`environment.yml` / `environment.yaml`) read into plain data (pure).

Accepts every shape repo2docker does: `name:` and `prefix:` (ignored), `channels:`, and
`dependencies:` holding conda match specs and one `pip:` list. Anything else gets an error that
names the file and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml

from ...errors import BuildpackError
from .pythons import PythonRequest, parse_request

MAX_DEPENDENCIES = 2000
# A conda match spec: optional `channel::`, a package name, then a version/build part.
_SPEC_RE = re.compile(
    r"^(?:(?P<channel>[A-Za-z0-9_.\-/:]+)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)"
    r"(?P<rest>(?:\s*[\[<>=!~ ].*)?)$"
)
_CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)*$")


@dataclass(frozen=True)
class CondaSpec:
    """One conda dependency line: the package name and the rest of the spec, as written."""

    name: str  # lowercase
    constraint: str  # "", "=1.2", ">=1.2,<2", " 1.2.* py39_0", "[version='>=1']", ...
    line: str

    @property
    def match_spec(self) -> str:
        """The spec in the form conda solvers read (channel prefix dropped)."""
        rest = self.constraint.strip()
        if rest.startswith("=") and not rest.startswith("=="):
            # `name=1.2` and `name=1.2=build` are conda's own shorthand; rattler reads the
            # spaced form.
            version, _, build = rest[1:].partition("=")
            return f"{self.name} {version}.*" if not build else f"{self.name} {version} {build}"
        return f"{self.name} {rest}".strip() if rest else self.name


@dataclass(frozen=True)
class CondaEnvironment:
    where: str  # the file's path in the repository, for messages
    channels: tuple[str, ...]
    specs: tuple[CondaSpec, ...]
    pip: tuple[str, ...] = field(default=())

    @property
    def python_spec(self) -> CondaSpec | None:
        return next((spec for spec in self.specs if spec.name == "python"), None)

    def python_request(self) -> PythonRequest | None:
        """The Python the file pins (`python=3.10`, `python >=3.9`), if any."""
        pin = self.python_spec
        return parse_request(pin.constraint.lstrip("= "), self.where) if pin else None


def parse_spec_line(line: str, where: str) -> CondaSpec:
    text = line.strip()
    if text.startswith("-"):
        raise BuildpackError(
            f"{where}: {text!r} looks like a command-line option, not a package; list "
            "packages as `- name` or `- name=1.2`"
        )
    match = _SPEC_RE.match(text)
    if not match or any(ord(c) < 32 for c in text) or len(text) > 300:
        raise BuildpackError(f"{where}: {text!r} is not a conda package spec (e.g. numpy=1.26)")
    return CondaSpec(match.group("name").lower(), match.group("rest"), text)


def check_channel(channel: str, where: str) -> str:
    """A channel named by a repository: a name (`conda-forge`) or an https:// URL without
    credentials. Local paths and other schemes never come from a repository."""
    if not isinstance(channel, str) or not channel.strip():
        raise BuildpackError(f"{where}: a channel is empty")
    channel = channel.strip()
    if "://" not in channel and ":" not in channel:
        if not _CHANNEL_NAME_RE.match(channel) or channel.startswith(("-", ".")):
            raise BuildpackError(f"{where}: channel {channel!r} is not a channel name or URL")
        return channel
    parts = urlsplit(channel)
    if parts.scheme not in ("https", "http"):
        raise BuildpackError(
            f"{where}: channel {channel!r} uses {parts.scheme or 'no'} scheme; a repository "
            "may name channels by name or by https:// URL"
        )
    if "@" in parts.netloc:
        raise BuildpackError(f"{where}: channel URLs must not contain credentials")
    if not parts.hostname:
        raise BuildpackError(f"{where}: channel {channel!r} has no host")
    return channel.rstrip("/")


def parse_environment_file(text: str, where: str) -> CondaEnvironment:
    """Read an environment file, or raise BuildpackError saying what is wrong and where."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or "cannot be read"
        raise BuildpackError(f"{where} is not valid YAML{place}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BuildpackError(f"{where} must be a mapping with `dependencies:` (and `channels:`)")
    channels = data.get("channels") or []
    if not isinstance(channels, list):
        raise BuildpackError(f"{where}: `channels` must be a list")
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise BuildpackError(f"{where}: `dependencies` must be a list")
    if len(dependencies) > MAX_DEPENDENCIES:
        raise BuildpackError(
            f"{where} lists {len(dependencies)} dependencies; minibinder builds at most "
            f"{MAX_DEPENDENCIES}"
        )
    specs: list[CondaSpec] = []
    pip: list[str] = []
    for entry in dependencies:
        if isinstance(entry, dict):
            if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
                raise BuildpackError(
                    f"{where}: a dependency that is a mapping must be `pip:` with a list, "
                    f"got {entry!r}"
                )
            pip += [_pip_line(line, where) for line in entry["pip"]]
        elif isinstance(entry, str | int | float):
            specs.append(parse_spec_line(str(entry), where))
        else:
            raise BuildpackError(f"{where}: cannot read the dependency {entry!r}")
    if len(pip) > MAX_DEPENDENCIES:
        raise BuildpackError(f"{where}: the pip section lists more than {MAX_DEPENDENCIES} lines")
    return CondaEnvironment(
        where, tuple(check_channel(c, where) for c in channels), tuple(specs), tuple(pip)
    )


def _pip_line(line: object, where: str) -> str:
    if not isinstance(line, str | int | float) or not str(line).strip():
        raise BuildpackError(f"{where}: cannot read the pip requirement {line!r}")
    text = str(line).strip()
    if "\n" in text or "\r" in text:
        raise BuildpackError(f"{where}: a pip requirement spans several lines: {text!r}")
    return text


@dataclass(frozen=True)
class RepositoryLock:
    """A repository's own lock, read while building (its platform is the host's)."""

    where: str
    kind: str  # "conda-lock" | "explicit"
    text: str


@dataclass(frozen=True)
class LockedPackage:
    """One package of a repository's own lock: where it is and how to check it."""

    url: str
    md5: str = ""
    sha256: str = ""

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def subdir(self) -> str:
        return self.url.rsplit("/", 2)[-2]


_HEX = re.compile(r"^[0-9a-f]+$")
_ARCHIVE = re.compile(r"^[A-Za-z0-9_.\-+!]+-[^-/]+-[^-/]+\.(conda|tar\.bz2)$")


def _locked(url: str, where: str, md5: str = "", sha256: str = "") -> LockedPackage:
    url = check_channel(url, where) if "://" in url else ""
    if not url or not _ARCHIVE.match(url.rsplit("/", 1)[-1]):
        raise BuildpackError(f"{where}: {url or 'a line'!r} is not the URL of a conda package")
    return LockedPackage(url, md5, sha256)


def _by_length(digest: str, where: str) -> dict[str, str]:
    """An explicit list's `#hash`: MD5 or SHA-256, told apart by length."""
    kind = {32: "md5", 64: "sha256"}.get(len(digest))
    if kind is None or not _HEX.match(digest):
        raise BuildpackError(f"{where}: {digest!r} is neither an MD5 nor a SHA-256 hash")
    return {kind: digest}


def parse_explicit(text: str, where: str) -> tuple[LockedPackage, ...]:
    """An `@EXPLICIT` list (`conda list --explicit`, conda-lock's render): one package URL a
    line, with `#md5` or `#sha256` after it."""
    packages = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "@EXPLICIT":
            continue
        url, _, digest = line.partition("#")
        digest = digest.strip().removeprefix("sha256:")
        hashes = _by_length(digest, where) if digest else {}
        packages.append(_locked(url.strip(), where, **hashes))
    if len(packages) > MAX_DEPENDENCIES:
        raise BuildpackError(f"{where} lists more than {MAX_DEPENDENCIES} packages")
    return tuple(packages)


def is_explicit(text: str) -> bool:
    """An environment file that is really an `@EXPLICIT` list."""
    lines = (line.strip() for line in text.splitlines())
    first = next((line for line in lines if line and not line.startswith("#")), "")
    return first == "@EXPLICIT"


def parse_conda_lock(
    text: str, where: str, subdir: str
) -> tuple[tuple[LockedPackage, ...], tuple[str, ...]]:
    """conda-lock's `conda-lock.yml`: the conda packages for `subdir` (with their noarch
    ones), and its pip packages as pinned requirements."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise BuildpackError(f"{where} is not valid YAML") from None
    entries = data.get("package") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BuildpackError(f"{where} is not a conda-lock file (no `package:` list)")
    conda, pip = [], []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("platform") != subdir:
            continue
        if entry.get("category", "main") != "main" and entry.get("optional"):
            continue
        hashes = entry.get("hash") or {}
        if entry.get("manager") == "conda":
            conda.append(
                _locked(
                    str(entry.get("url", "")),
                    where,
                    str(hashes.get("md5", "")),
                    str(hashes.get("sha256", "")),
                )
            )
        elif entry.get("manager") == "pip":
            name, version = str(entry.get("name", "")), str(entry.get("version", ""))
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", name) or not version:
                raise BuildpackError(f"{where}: cannot read the pip package {name!r}")
            pip.append(f"{name}=={version}")
    if not conda:
        raise BuildpackError(f"{where} holds no conda packages for {subdir}")
    if len(conda) + len(pip) > MAX_DEPENDENCIES:
        raise BuildpackError(f"{where} lists more than {MAX_DEPENDENCIES} packages")
    return tuple(conda), tuple(pip)
