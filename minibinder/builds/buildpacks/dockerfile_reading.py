"""How Docker's builders read a Dockerfile: parser directives, continuations, heredocs, words and
variable expansion. Pure, so that the Dockerfile policy decides on what the builder will see.

Two readings exist. The classic builder of Docker up to 20.10 (what minibinder's API builds use
there) knows no heredocs and continues a line on any trailing escape character; BuildKit and the
classic builder of later releases read heredocs and do not continue on an escaped escape. The
policy checks both, so a file cannot mean one thing to the check and another to the daemon.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

# Instructions the classic builder of Docker 20.10 knows; any other one fails the whole file
# before a single step runs.
LEGACY_INSTRUCTIONS = frozenset(
    {
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)
_HEREDOC_INSTRUCTIONS = ("add", "copy", "run")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[ \t\n\f\r]*=[ \t\n\f\r]*(.+?)[ \t\n\f\r]*")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")  # how the builder splits FROM, ADD and COPY words
_HEREDOC = re.compile(r"(\d*)<<(-?)([^<]*)")
_PLAIN_DELIMITER = re.compile(r"[A-Za-z0-9_.-]+|'[A-Za-z0-9_.-]+'|\"[A-Za-z0-9_.-]+\"")


class DockerfileSyntaxError(ValueError):
    """Something the builders could read in two ways; `line` is where it starts."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Instruction:
    keyword: str  # lower-case, as the builder dispatches it
    rest: str  # everything after the keyword, continuation lines joined
    line: int  # the line the instruction starts on
    escapes: tuple[str, ...] = ("\\",)  # escape characters its words may be read with


@dataclass(frozen=True)
class Reading:
    instructions: tuple[Instruction, ...]
    directives: dict[str, tuple[str, int]]  # name -> (value, line)
    escape: str
    legacy: bool


def read_dockerfile(text: str, legacy: bool) -> Reading:
    """The instructions of a Dockerfile as one of the two builders reads them."""
    lines = text.removeprefix("\ufeff").split("\n")
    lines = (
        [line[:-1] if line.endswith("\r") else line for line in lines]
        if legacy
        else [line.rstrip("\r") for line in lines]
    )
    escape, directives_done = "\\", False
    directives: dict[str, tuple[str, int]] = {}
    instructions: list[Instruction] = []
    index = 0
    while index < len(lines):
        first = lines[index].lstrip()
        index += 1
        start = index
        if not directives_done:
            match = _directive(first, legacy)
            name = match.group(1).lower() if match else ""
            if match and (name in ("escape", "syntax") or (name == "check" and not legacy)):
                directives.setdefault(name, (match.group(2), start))
                if name == "escape":
                    escape = _escape_token(match.group(2), start)
            else:
                directives_done = True
        if first.startswith("#"):
            continue
        joined, more = _strip_continuation(first, escape, legacy)
        if not more and not joined:
            continue
        parts = [joined]
        while more and index < len(lines):
            line = lines[index]
            index += 1
            if line.lstrip().startswith("#") or not line.strip():
                continue  # comment and empty lines inside a continuation are dropped
            joined, more = _strip_continuation(line, escape, legacy)
            parts.append(joined)
        logical = "".join(parts).strip()
        keyword, rest = _split_keyword(logical)
        instructions.append(Instruction(keyword, rest, start, (escape,)))
        if not legacy:
            index = _skip_heredocs(keyword, rest, logical, lines, index, start)
    return Reading(tuple(instructions), directives, escape, legacy)


def _directive(line: str, legacy: bool) -> re.Match[str] | None:
    """`# name=value` at the top of the file; newer builders allow any Unicode space after #."""
    if not line.startswith("#"):
        return None
    after = line[1:].lstrip(" \t\n\f\r") if legacy else line[1:].lstrip()
    return _DIRECTIVE.fullmatch(after)


def _escape_token(value: str, line: int) -> str:
    if value not in ("\\", "`"):
        raise DockerfileSyntaxError(line, f"the escape directive takes \\ or `, not {value!r}")
    return value


def _strip_continuation(line: str, escape: str, legacy: bool) -> tuple[str, bool]:
    """The line without its continuation character, and whether the instruction goes on."""
    stripped = line.rstrip(" \t")
    if not stripped.endswith(escape):
        return line, False
    if not legacy and len(stripped) > 1 and stripped[-2] == escape:
        return line, False  # an escaped escape character ends the line for newer builders
    return stripped[:-1], True


def _split_keyword(logical: str) -> tuple[str, str]:
    keyword, *rest = _WHITESPACE.split(logical, maxsplit=1)
    return keyword.lower(), rest[0] if rest else ""


def _skip_heredocs(
    keyword: str, rest: str, logical: str, lines: list[str], index: int, start: int
) -> int:
    """Past the bodies of the heredocs an ADD, COPY or RUN opens: they are data, not
    instructions."""
    if keyword == "onbuild":
        keyword, rest = _split_keyword(rest)
    if keyword not in _HEREDOC_INSTRUCTIONS or "<<" not in logical:
        return index
    if json_words(split_flags(rest)[1]) is not None:
        return index
    words, balanced = shell_words(logical, "\\", raw=True)
    delimiters = []
    for word, _ in words:
        match = _HEREDOC.fullmatch(word)
        if not match or not match.group(3):
            continue
        if not balanced or not _PLAIN_DELIMITER.fullmatch(match.group(3)):
            raise DockerfileSyntaxError(
                start, f"the heredoc {word!r} is ambiguous; use a plain word such as <<EOF"
            )
        delimiters.append((match.group(3).strip("'\""), match.group(2) == "-"))
    for delimiter, strip_tabs in delimiters:
        while index < len(lines):
            line = lines[index].rstrip("\r\n")
            index += 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
    return index


def shell_words(text: str, escape: str, raw: bool = False) -> tuple[list[tuple[str, int]], bool]:
    """Split on unquoted whitespace as the builder's word parsers do. Each word comes with its
    offset; with `raw` quotes and escapes stay in the word. The flag says whether every quote
    (and `${`) was closed."""
    words: list[tuple[str, int]] = []
    word, begin, quote, index, braces = "", -1, "", 0, 0
    while index < len(text):
        char = text[index]
        if not quote and not braces and char.isspace():
            if begin >= 0:
                words.append((word, begin))
            word, begin = "", -1
            index += 1
            continue
        begin = index if begin < 0 else begin
        if char == escape and quote != "'" and index + 1 < len(text):
            word += text[index : index + 2] if raw else text[index + 1]
            index += 2
            continue
        if quote and char == quote:
            quote = ""
            word += char if raw else ""
        elif not quote and char in "'\"":
            quote = char
            word += char if raw else ""
        else:
            if raw and quote != "'" and text.startswith("${", index):
                braces += 1
            elif raw and braces and char == "}":
                braces -= 1
            word += char
        index += 1
    if begin >= 0:
        words.append((word, begin))
    return words, not quote and not braces


def split_flags(rest: str) -> tuple[list[str], str]:
    """Leading `--name[=value]` words (quotes removed) and the text after them."""
    flags: list[str] = []
    for word, begin in shell_words(rest, "\\")[0]:
        if not rest.startswith("--", begin):
            return flags, rest[begin:].strip()
        if word == "--":
            return flags, rest[begin + 2 :].strip()
        flags.append(word)
    return flags, ""


def json_words(args: str) -> list[str] | None:
    """The words of an exec-form (JSON array) argument list; None when it is not one."""
    if not args.lstrip().startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def argument_words(args: str) -> list[str]:
    """The words of ADD or COPY arguments: a JSON array, else whitespace-separated."""
    words = json_words(args)
    return words if words is not None else whitespace_words(args)


def whitespace_words(args: str) -> list[str]:
    """Words as FROM (and non-JSON ADD and COPY) split them: on whitespace, quotes or not."""
    return [word for word in _WHITESPACE.split(args.strip()) if word]


# -- variable expansion --------------------------------------------------------------------------

UNKNOWN = object()  # a variable whose value the Dockerfile alone does not tell
Lookup = Callable[[str], "str | None | object"]  # a value, None when unset, or UNKNOWN


@dataclass(frozen=True)
class Expanded:
    """A word after expansion: all of it when `complete`, else the text before the first value
    that cannot be known."""

    text: str
    complete: bool


def expand(word: str, lookup: Lookup, escape: str) -> Expanded:
    """Quote removal and `$X`, `${X}`, `${X:-default}`, `${X:+alternative}` as the builder does."""
    return _Expander(word, lookup, escape).word(stop="")


class _Expander:
    def __init__(self, text: str, lookup: Lookup, escape: str):
        self.text, self.lookup, self.escape, self.at = text, lookup, escape, 0

    def word(self, stop: str) -> Expanded:
        pieces: list[Expanded] = []
        quote = ""
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if quote == "'":
                quote = "" if char == "'" else quote
                pieces.append(Expanded("" if char == "'" else char, True))
            elif char == stop and not quote:
                break
            elif char == '"':
                quote = "" if quote else '"'
            elif char == "'" and not quote:
                quote = "'"
            elif char == self.escape:
                pieces.append(self._escaped(quote))
            elif char == "$":
                pieces.append(self._dollar())
            else:
                pieces.append(Expanded(char, True))
        return _join(pieces)

    def _escaped(self, quote: str) -> Expanded:
        if self.at >= len(self.text):
            return Expanded("", True)
        following = self.text[self.at]
        if quote and following not in ('"', "$", self.escape):
            return Expanded(self.escape, True)
        self.at += 1
        return Expanded(following, True)

    def _dollar(self) -> Expanded:
        if self.text.startswith("{", self.at):
            self.at += 1
            return self._braced()
        name = self._name()
        return self._value(name) if name else Expanded("$", True)

    def _name(self) -> str:
        text, start = self.text, self.at
        if start < len(text) and (text[start] in "@*#?-$!" or text[start].isdigit()):
            end = start + 1
            while text[start].isdigit() and end < len(text) and text[end].isdigit():
                end += 1
        else:
            end = start
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
        self.at = end
        return text[start:end]

    def _braced(self) -> Expanded:
        name = self._name()
        if self.text.startswith("}", self.at):
            self.at += 1
            return self._value(name)
        operator = ""
        if self.text.startswith((":-", ":+", ":?"), self.at):
            operator = self.text[self.at : self.at + 2]
        elif self.at < len(self.text) and self.text[self.at] in "-+?#%/":
            operator = self.text[self.at]
        self.at += len(operator)
        alternative = self.word(stop="}")
        value = self.lookup(name)
        if not operator or value is UNKNOWN or operator in ("#", "%", "/", "?"):
            return Expanded("", False)  # a bad substitution, or a form not worth guessing
        is_set = value is not None and (bool(value) or ":" not in operator)
        if operator.endswith("-"):
            return Expanded(str(value), True) if is_set else alternative
        if operator.endswith("+"):
            return alternative if is_set else Expanded("", True)
        return Expanded(str(value or ""), True)

    def _value(self, name: str) -> Expanded:
        value = self.lookup(name)
        if value is UNKNOWN:
            return Expanded("", False)
        return Expanded(str(value or ""), True)


def _join(pieces: list[Expanded]) -> Expanded:
    text = ""
    for piece in pieces:
        text += piece.text
        if not piece.complete:
            return Expanded(text, False)
    return Expanded(text, True)
