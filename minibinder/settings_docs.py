"""Documentation of the settings, generated from their declarations: example TOML, README table."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping

from .config import Config, fields
from .settings_load import Loaded

HEADER = """\
# minibinder settings. Every setting is optional; the values shown are the defaults.
# Use with `minibinder --config PATH` (before or after the command) or MINIBINDER_CONFIG=PATH.
# Each setting can also be set in the environment as MINIBINDER_<NAME> (lists comma-separated,
# tables as K=V,K=V); settings are lines above the first [table]: a line below one belongs to it.
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


# Shown only as "set": printing a secret is never what `settings --effective` is for.
SECRETS = {"admin_token"}


def effective_toml(
    loaded: Loaded, path: str | None, notes: Mapping[str, list[str]] | None = None
) -> str:
    """The values in force, as a settings file would say them, each with where it came from
    (default, the file, a MINIBINDER_* variable); tables last, as TOML wants them. `notes`
    are comment lines after a setting (what overrides it while minibinder runs)."""
    notes = notes or {}
    config, plain, tables = loaded.config, [], []
    derived = {"data_dir": f" ({config.data_path})", "admin_bind": f" ({config.admin_address})"}
    for f in fields():
        value, source = getattr(config, f.name), loaded.sources[f.name]
        note = f"  # {source}" + (derived.get(f.name, "") if not value else "")
        if isinstance(value, dict):
            rows = [f"{json.dumps(k)} = {f.metadata['kind'].toml(v)}" for k, v in value.items()]
            comments = [f"# {line}" for line in notes.get(f.name, [])]
            tables += [f"[{f.name}]{note}", *rows, *comments, ""]
            continue
        if f.name in SECRETS and value:
            plain.append(f"# {f.name} = (set, {len(value)} characters, not shown){note}")
        else:
            plain.append(f"{f.name} = {f.metadata['kind'].toml(value)}{note}")
        plain += [f"# {line}" for line in notes.get(f.name, [])]
    header = (
        f"# The settings in force: the file {path}, then MINIBINDER_* variables, then defaults.\n"
        if path
        else "# The settings in force: no settings file, MINIBINDER_* variables, then defaults.\n"
    )
    return header + "\n".join(plain) + "\n\n" + "\n".join(tables)
