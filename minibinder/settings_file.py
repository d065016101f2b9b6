"""Editing a settings file in place: top-level lines go above its first [table] (a line below a
table's header belongs to that table), earlier lines for the same settings are replaced, and
the result is parsed back before it replaces the file."""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

_HEADER = re.compile(r"""^\s*\[\[?\s*[A-Za-z0-9_"'.\- ]+\]\]?\s*(#.*)?$""")


def with_top_level(text: str, lines: Mapping[str, str]) -> str:
    """`text` with `name = value` for each of `lines` (values already written as TOML) at the
    end of its top-level part, earlier lines for those names gone. Raises ConfigError when the
    result would not mean exactly that (an unusual layout): the file is then left alone."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"it is not valid TOML ({error}); fix it first") from None
    rows = text.splitlines(keepends=True)
    first_table = next((i for i, row in enumerate(rows) if _HEADER.match(row)), len(rows))
    names = "|".join(re.escape(name) for name in lines)
    own = re.compile(rf"""^\s*(["']?)({names})\1\s*=""")
    top = [row for row in rows[:first_table] if not own.match(row)]
    if top and not top[-1].endswith("\n"):
        top[-1] += "\n"
    while top and not top[-1].strip():  # the new lines follow the last setting
        top.pop()
    added = [f"{name} = {value}\n" for name, value in lines.items()]
    rest = rows[first_table:]
    result = "".join(top + added + (["\n"] if rest else []) + rest)
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        after = None
    wanted = {**before, **{name: tomllib.loads(f"v = {v}")["v"] for name, v in lines.items()}}
    if after != wanted:
        raise ConfigError(
            "its layout is unusual and the lines could not be placed safely; add them above "
            "its first [table] yourself"
        )
    return result


def set_top_level(path: str | os.PathLike, lines: Mapping[str, str]) -> None:
    """Write `lines` into the settings file at `path` (made, readable by its owner only, when
    missing), replacing it in one step."""
    target = Path(path)
    try:
        text = target.read_text() if target.exists() else ""
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
    except OSError as error:
        raise ConfigError(f"cannot read {target}: {error.strerror}") from None
    try:
        result = with_top_level(text, lines)
    except ConfigError as error:
        raise ConfigError(f"{target}: {error}") from None
    partial = ""
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(handle, "w") as out:
            out.write(result)
        os.chmod(partial, mode)
        os.replace(partial, target)
    except OSError as error:
        if partial:
            Path(partial).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {target}: {error.strerror}") from None
