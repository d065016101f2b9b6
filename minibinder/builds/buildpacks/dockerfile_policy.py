"""The Dockerfile policy: what a repository's own Dockerfile may make the Docker daemon fetch.

The daemon pulls base images, `COPY --from` images and BuildKit frontends and downloads `ADD`
URLs itself, on the host's network, where the egress rules that hold builds and sessions do not
apply. So the file is read as the builders read it (dockerfile_reading) and every source is
decided after ARG and ENV expansion, stage by stage: images only from `allowed_registries`, no
URLs, no RUN flags, no frontends but Docker's own. Pure: text and settings in, an error out.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from ...errors import BuildpackError
from .dockerfile_reading import (
    LEGACY_INSTRUCTIONS,
    UNKNOWN,
    DockerfileSyntaxError,
    Expanded,
    Instruction,
    Reading,
    argument_words,
    expand,
    read_dockerfile,
    shell_words,
    split_flags,
    whitespace_words,
)

DOCKER_HUB = "docker.io"
_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_FRONTEND = "docker/dockerfile"  # the only BuildKit frontend a Dockerfile may name
_LOCAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".home.arpa",
    ".corp",
    ".private",
)

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_REMOTE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://|git@")
_REMOTE_PREFIX = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*(?::/{0,2})?)?")
_DIRECTIVE = re.compile(r"(?i:syntax)[ \t]*=[ \t]*(.+?)[ \t]*")
_KEY_VALUE = re.compile(r"(\S*)([\t\v\f\r ]+|$)(.*)", re.DOTALL)


@dataclass(frozen=True)
class ImageReference:
    registry: str  # host or host:port, lower-case; "docker.io" for Docker Hub
    repository: str  # "library/python"


def parse_image_reference(text: str) -> ImageReference:
    """An image reference as Docker resolves it; ValueError when Docker would not accept it."""
    name, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ValueError(f"bad digest {digest!r}")
    if name.rfind(":") > name.rfind("/"):
        name, _, tag = name.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise ValueError(f"bad tag {tag!r}")
    first, slash, rest = name.partition("/")
    # Docker's rule: the first component names a registry if it looks like a host.
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise ValueError(f"bad registry {first!r}")
        registry, path = first.lower(), rest
    else:
        registry, path = DOCKER_HUB, name
    if not all(_PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise ValueError(f"bad repository name {path!r}")
    registry = DOCKER_HUB if registry in _HUB_NAMES else registry
    if registry == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    return ImageReference(registry, path)


def normalise_registries(entries: Collection[str]) -> frozenset[str]:
    return frozenset(DOCKER_HUB if e.lower() in _HUB_NAMES else e.lower() for e in entries)


def check_dockerfile_policy(
    text: str,
    where: str,
    allowed_registries: Collection[str] = (DOCKER_HUB,),
    build_args: Mapping[str, str] | None = None,
) -> None:
    """Refuse, naming the line, a Dockerfile that would make the daemon fetch from anywhere but
    `allowed_registries` (after expanding ARG and ENV, `build_args` overriding ARG defaults),
    a BuildKit frontend other than Docker's own, or RUN flags that reach past the sandbox."""
    allowed, args = normalise_registries(allowed_registries), dict(build_args or {})
    try:
        readings = [read_dockerfile(text, legacy=False), read_dockerfile(text, legacy=True)]
    except DockerfileSyntaxError as error:
        raise BuildpackError(f"{where} line {error.line}: {error}") from None
    for value, line in _frontends(text, readings, args):
        _check_frontend(value, f"{where} line {line}", allowed)
    if not any(i.keyword == "from" for i in readings[0].instructions):
        raise BuildpackError(f"{where} has no FROM instruction")
    for reading in readings:
        if reading.legacy and not {i.keyword for i in reading.instructions} <= LEGACY_INSTRUCTIONS:
            continue  # that builder refuses the whole file before running any of it
        _StageWalk(reading, where, allowed, args).run()


def _frontends(text: str, readings: list[Reading], build_args: dict) -> list[tuple[str, int]]:
    """Every way BuildKit finds a frontend: `# syntax=` (also as `//` or after a `#!` line), a
    JSON file's "syntax" key, the BUILDKIT_SYNTAX build argument."""
    found = [r.directives["syntax"] for r in readings if "syntax" in r.directives]
    lines = text.removeprefix("\ufeff").split("\n")
    offset = 1 if lines[0].startswith("#!") else 0
    for prefix in ("#", "//"):
        for number, line in enumerate(lines[offset:], offset + 1):
            if not line.startswith(prefix):
                break
            match = _DIRECTIVE.fullmatch(line[len(prefix) :].strip())
            if match:
                found.append((match.group(1), number))
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("syntax"), str):
        found.append((document["syntax"], 1))
    if "BUILDKIT_SYNTAX" in build_args:
        found.append((build_args["BUILDKIT_SYNTAX"], 1))
    return found


def _check_frontend(value: str, at: str, allowed: frozenset[str]) -> None:
    image = value.split(" ")[0]
    try:
        reference = parse_image_reference(image)
    except ValueError:
        reference = None
    if reference and reference.repository == _FRONTEND and reference.registry in allowed:
        return
    raise BuildpackError(
        f"{at}: the '# syntax=' frontend {image} is not allowed: a BuildKit frontend is a "
        f"program that runs inside the builder; only Docker's own {_FRONTEND} from "
        "allowed_registries may be named (or leave the line out)"
    )


@dataclass
class _Stage:
    names: set[str]
    env_known: bool  # False when the base image's environment (unknown here) applies
    env: dict[str, object] = field(default_factory=dict)  # what ENV set in this file
    args: dict[str, object] = field(default_factory=dict)  # ARGs declared in the stage
    triggers: list[tuple[str, int]] = field(default_factory=list)  # ONBUILD text, line

    def lookup(self, name: str) -> object:
        """As the builder expands: ENV first, then the base image's environment, then ARG."""
        if name in self.env:
            return self.env[name]
        return self.args.get(name) if self.env_known else UNKNOWN

    def lookup_in_file(self, name: str) -> object:
        """The same, as if the base image's environment held nothing: for messages."""
        return self.env[name] if name in self.env else self.args.get(name)

    def copy(self) -> _Stage:
        return _Stage(set(self.names), self.env_known, dict(self.env), dict(self.args))


class _StageWalk:
    """One reading, instruction by instruction, with the scopes Docker gives variables."""

    def __init__(self, reading: Reading, where: str, allowed: frozenset[str], build_args: dict):
        self.reading, self.where, self.allowed = reading, where, allowed
        self.build_args = build_args
        self.meta = _Stage(names=set(), env_known=True)  # ARGs before the first FROM
        self.stages: list[_Stage] = []

    def run(self) -> None:
        stage = None
        for instruction in self.reading.instructions:
            at = f"{self.where} line {instruction.line}"
            if instruction.keyword == "from":
                stage = self._from(instruction, at)
            elif stage is not None:
                self._step(instruction, stage, at)
            elif instruction.keyword == "arg":
                self._declare(instruction, self.meta)

    # -- FROM and stages ---------------------------------------------------------------------------

    def _from(self, instruction: Instruction, at: str) -> _Stage:
        flags, rest = split_flags(instruction.rest)
        words = whitespace_words(rest)
        # Newer builders also take `--platform value`: then the image is the second word.
        shifted = any("=" not in flag for flag in flags)
        stage = _Stage(names=set(), env_known=True)
        for index, word in enumerate(words[: 2 if shifted else 1]):
            if len(words) > index + 2 and words[index + 1].lower() == "as":
                name = words[index + 2]
                expanded = expand(name, self._meta_lookup, self.reading.escape)
                stage.names |= {name.lower(), expanded.text.lower()}
            hint = "give it an ARG with a default before the first FROM"
            image = self._expanded(word, self._meta_lookup, instruction, at, "FROM", hint)
            parent = self._stage_named(image, by_index=False)
            if image.lower() == "scratch":
                continue
            if parent is None:
                self._check_image(image, at, "FROM")
                stage.env_known = False
                continue
            stage.env_known &= parent.env_known
            stage.env.update(parent.env)
            self._run_triggers(parent, stage, instruction.line)
        self.stages.append(stage)
        return stage

    def _stage_named(self, name: str, by_index: bool = True) -> _Stage | None:
        if by_index and name.isdigit():
            return self.stages[int(name)] if int(name) < len(self.stages) else None
        return next((s for s in self.stages if name.lower() in s.names), None)

    def _run_triggers(self, parent: _Stage, child: _Stage, from_line: int) -> None:
        """ONBUILD instructions of a stage run when a later stage starts FROM it, in that
        stage's scope. BuildKit reads them as one file; the classic builder one by one."""
        if not parent.triggers:
            return

        def at(line: int) -> str:
            return f"{self.where} line {line} (ONBUILD, run by the FROM on line {from_line})"

        if self.reading.legacy:
            for text, line in parent.triggers:
                for trigger in self._reread(text, at(line)):
                    self._step(trigger, child, at(line))
            return
        joined = "\n".join(text for text, _ in parent.triggers)
        for trigger in self._reread(joined, at(parent.triggers[0][1])):
            line = parent.triggers[min(trigger.line, len(parent.triggers)) - 1][1]
            self._step(trigger, child, at(line))

    def _reread(self, text: str, at: str) -> tuple[Instruction, ...]:
        """ONBUILD text as the builder reads it again: with the default escape character, and
        (who knows) the file's own."""
        try:
            instructions = read_dockerfile(text, self.reading.legacy).instructions
        except DockerfileSyntaxError as error:
            raise BuildpackError(f"{at}: {error}") from None
        escapes = tuple(dict.fromkeys(("\\", self.reading.escape)))
        return tuple(replace(instruction, escapes=escapes) for instruction in instructions)

    # -- instructions inside a stage ---------------------------------------------------------------

    def _step(self, instruction: Instruction, stage: _Stage, at: str) -> None:
        keyword, rest = instruction.keyword, instruction.rest
        if keyword in ("arg", "env"):
            self._declare(instruction, stage)
        elif keyword == "add":
            self._check_add(instruction, stage, at)
        elif keyword == "copy":
            self._check_copy_from(instruction, at)
        elif keyword == "run":
            flags, _ = split_flags(rest)
            if flags:
                raise BuildpackError(f"{at}: RUN {flags[0].split('=')[0]} is not allowed")
        elif keyword == "onbuild":
            # Checked here too, in a scope where nothing is known: an image built from this
            # file may become the base of another build, which would run the trigger there.
            for trigger in self._reread(rest, at):
                self._step(trigger, _Stage(names=set(), env_known=False), f"{at} (ONBUILD)")
            stage.triggers.append((rest, instruction.line))

    def _check_add(self, instruction: Instruction, stage: _Stage, at: str) -> None:
        _, args = split_flags(instruction.rest)
        for word in argument_words(args)[:-1]:  # the last word is the destination
            for escape in instruction.escapes:
                source = expand(word, stage.lookup_in_file, escape)
                if _REMOTE.match(source.text):
                    raise BuildpackError(
                        f"{at}: ADD from a URL is not allowed ({source.text}): the Docker "
                        "daemon would fetch it from the host's network; download it in a RUN "
                        "step instead"
                    )
                source = expand(word, stage.lookup, escape)
                if not source.complete and _REMOTE_PREFIX.fullmatch(source.text):
                    raise BuildpackError(
                        f"{at}: ADD {word}: whether this is a URL depends on a variable whose "
                        "value may come from the base image; write the source out, or set the "
                        "variable with ENV in this stage"
                    )

    def _check_copy_from(self, instruction: Instruction, at: str) -> None:
        flags, args = split_flags(instruction.rest)
        values = [f.partition("=")[2] for f in flags if f.lower().startswith("--from=")]
        if any(f.lower() == "--from" for f in flags):
            values += argument_words(args)[:1]  # `--from value`, as newer builders read it
        for value in values:
            # Builders take --from as written: BuildKit refuses variables in it, the classic
            # builder looks the text up as it is.
            if "$" in value:
                raise BuildpackError(
                    f"{at}: COPY --from={value}: Docker does not expand variables in --from; "
                    "write the stage name or image out"
                )
            if self._stage_named(value) is None:
                self._check_image(value, at, "COPY --from")

    # -- ARG and ENV -------------------------------------------------------------------------------

    def _declare(self, instruction: Instruction, scope: _Stage) -> None:
        """ARG and ENV. A value is expanded both with the scope as it was before the instruction
        and as it grows pair by pair (builders differ); where those differ, it is not known."""
        is_env = instruction.keyword == "env"
        before = scope.copy()
        for key, raw in self._pairs(instruction):
            if any(char in key for char in ("'", '"', "$", *instruction.escapes)):
                scope.env_known = False  # a computed or quoted name could shadow anything
                scope.env.clear()
                continue
            if is_env:
                scope.env[key] = self._agreed(raw or "", instruction, (scope, before))
            elif key in self.build_args:
                scope.args[key] = self.build_args[key]
            elif raw is not None:
                scope.args[key] = self._agreed(raw, instruction, (scope, before))
            elif scope is not self.meta:  # a stage's ARG without a default takes the global one
                scope.args[key] = self._meta_value(key)
            else:
                scope.args[key] = None

    def _agreed(self, raw: str, instruction: Instruction, scopes: tuple[_Stage, ...]) -> object:
        values = {
            _value(expand(raw, scope.lookup, escape))
            for scope in scopes
            for escape in instruction.escapes
        }
        return values.pop() if len(values) == 1 else UNKNOWN

    def _pairs(self, instruction: Instruction) -> list[tuple[str, str | None]]:
        escape = instruction.escapes[0]
        words = [word for word, _ in shell_words(instruction.rest, escape, raw=True)[0]]
        if instruction.keyword == "env" and words and "=" not in words[0]:
            key, _, value = _KEY_VALUE.match(instruction.rest.strip()).groups()  # type: ignore[union-attr]
            return [(key, value)]  # the old form, ENV KEY value
        return [(w.partition("=")[0], w.partition("=")[2] if "=" in w else None) for w in words]

    def _meta_value(self, name: str) -> object:
        return self.meta.args.get(name) if self.meta.env_known else UNKNOWN

    def _meta_lookup(self, name: str) -> object:
        """FROM sees only ARGs declared before the first FROM; any other name is refused."""
        known = self.meta.env_known and name in self.meta.args
        return self.meta.args[name] if known else UNKNOWN

    # -- image references --------------------------------------------------------------------------

    def _expanded(
        self, word: str, lookup, instruction: Instruction, at: str, what: str, hint: str
    ) -> str:
        results = {expand(word, lookup, escape) for escape in instruction.escapes}
        if any(not result.complete for result in results) or len(results) > 1:
            raise BuildpackError(
                f"{at}: {what} {word} uses a variable minibinder cannot resolve before the "
                f"build, so it cannot tell where the image would come from; {hint}"
            )
        return results.pop().text

    def _check_image(self, text: str, at: str, what: str) -> None:
        try:
            registry = parse_image_reference(text).registry
        except ValueError as error:
            raise BuildpackError(
                f"{at}: {what} {text} is not an image reference ({error})"
            ) from None
        if registry in self.allowed:
            return
        raise BuildpackError(
            f"{at}: {what} {text} names the registry {registry} ({_describe(registry)}), "
            f"which is not in allowed_registries ({', '.join(sorted(self.allowed)) or 'empty'}). "
            "The Docker daemon pulls images from the host's own network, so builds may use "
            f"only those registries; use an image from one of them, or an operator who trusts "
            f"{registry} can add it to allowed_registries"
        )


def _value(expanded: Expanded) -> object:
    return expanded.text if expanded.complete else UNKNOWN


def _describe(registry: str) -> str:
    host = registry[1 : registry.find("]")] if registry.startswith("[") else registry.split(":")[0]
    try:
        ipaddress.ip_address(host)
        return "an IP address"
    except ValueError:
        pass
    if host == "localhost" or "." not in host or host.endswith(_LOCAL_SUFFIXES):
        return "a loopback or private name"
    return "a registry that is not listed"
