"""Every settings line the README shows (`name = value` in its prose, and commented in its shell
blocks) is valid TOML naming a real setting, and minibinder accepts it: a one-line table that
TOML refuses (#22 item 13) or a renamed setting fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from minibinder.config import fields
from minibinder.identity import hash_code
from minibinder.settings_load import load_config

README = Path(__file__).resolve().parents[2] / "README.md"
# What the README says goes with a line, where the line alone is refused.
COMPANIONS = {
    'access = "header"': {"trusted_proxies": ["127.0.0.1"]},
    'access = "code"': {"access_code_hash": hash_code("the code", iterations=1)},
    'placement = "swarm"': {"registry": "registry.lab.example:5000"},
}
# Lines of the git_credentials file the README shows, which are not settings.
CREDENTIAL_FILE_LINES = {'token = "..."', 'username = "..."'}


def settings_lines() -> list[str]:
    text = README.read_text().split("\n| Setting |")[0]  # the generated table is checked apart
    found = set()
    prose = re.sub(r"```sh\n.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())
        if re.match(r"[a-z_]+ = ", span):
            found.add(span)
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            commented = re.match(r"\s*# ([a-z_]+ = .*)$", line)
            if commented:
                found.add(commented.group(1))
    return sorted(found - CREDENTIAL_FILE_LINES)


def test_the_readme_shows_settings_lines():
    assert len(settings_lines()) >= 5  # the extraction still finds them


@pytest.mark.parametrize("line", settings_lines())
def test_a_settings_line_of_the_readme_is_accepted(line):
    values = tomllib.loads(line)
    names = {field.name for field in fields()}
    assert set(values) <= names, f"not a setting: {line}"
    load_config(overrides={**COMPANIONS.get(line, {}), **values})
