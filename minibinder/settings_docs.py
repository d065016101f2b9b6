"""Documentation of the settings, generated from their declarations: example TOML, README table."""

from __future__ import annotations

import json
import textwrap

from .config import Config, fields

HEADER = """\
# minibinder settings. Every setting is optional; the values shown are the defaults.
# Use with `minibinder --config PATH` or MINIBINDER_CONFIG=PATH. Each setting can also be
# set in the environment as MINIBINDER_<NAME> (lists comma-separated, tables as K=V,K=V).
"""


def example_toml(values: Config | None = None) -> str:
    """Every setting with its help, at its default (or at `values`)."""
    defaults, plain, tables = values or Config(), [], []
    for f in fields():
        comment = ["# " + line for line in textwrap.wrap(f.metadata["help"], 94)]
        value = getattr(defaults, f.name)
        if f.metadata["section"]:
            plain += [
                f"# ==== {f.metadata['section']} " + "=" * (88 - len(f.metadata["section"])),
                "",
            ]
        if isinstance(value, dict):
            tables += [
                *comment,
                f"[{f.name}]",
                *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items()),
                "",
            ]
        else:
            plain += [*comment, f"{f.name} = {f.metadata['kind'].toml(value)}", ""]
    return HEADER + "\n" + "\n".join(plain + tables)


def markdown_table() -> str:
    defaults = Config()
    rows = ["| Setting | Default | Meaning |", "| --- | --- | --- |"]
    for f in fields():
        if f.metadata["section"]:
            rows.append(f"| **{f.metadata['section']}** | | |")
        value = f.metadata["kind"].toml(getattr(defaults, f.name)).replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{value}` | {f.metadata['help']} |")
    return "\n".join(rows)
