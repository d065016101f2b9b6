"""`mamba` and `conda` in images of conda environments (repo2docker's images have them, and
postBuild scripts use them: `mamba install -y make`).

An environment image gets minibinder's own small command (conda_command.py) over rattler, the
solver that made the environment, rather than micromamba from the channel: the same solver
gives the same answers the build got, it works with every channel the environment came from
(an internal one need not carry micromamba), and its only download, rattler from the package
index, happens on first use, so images that never call it stay as they are. An image whose
environment.yml went to the package index because no channel answered gets a command that
says so instead of "command not found".
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

COMMANDS = ("mamba", "conda")
HOME = "/srv/conda/minibinder"  # the command and its settings in the image
NO_CONDA = "/etc/minibinder/no-conda-environment"  # why there is none, when there is none
_SCRIPT = Path(__file__).with_name("conda_command.py")


def rattler_version() -> str:
    return importlib.metadata.version("py-rattler")


def write_conda_command(
    tools: Path, prefix: Path, image_prefix: str, channels: Sequence[str], channel_alias: str
) -> None:
    """Fill `tools` (copied to HOME) with the command and its settings, and add `mamba` and
    `conda` to the environment's bin unless it has its own (a repository that lists conda)."""
    tools.mkdir(parents=True, exist_ok=True)
    (tools / "conda_command.py").write_bytes(_SCRIPT.read_bytes())
    settings = {
        "prefix": image_prefix,
        "channels": list(dict.fromkeys(channels)),
        "channel_alias": channel_alias,
        "rattler": rattler_version(),
    }
    (tools / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    wrapper = (
        "#!/bin/sh\n# minibinder's conda command (install, remove, list) over rattler\n"
        f'exec /srv/venv/bin/python -I {HOME}/conda_command.py "$(basename "$0")" "$@"\n'
    )
    (prefix / "bin").mkdir(exist_ok=True)
    for name in COMMANDS:
        path = prefix / "bin" / name
        if not path.exists():
            path.write_text(wrapper)
            path.chmod(0o755)


def unavailable_conda_step(where: str) -> str:
    """Root step: `mamba` and `conda` that say why this image has no conda environment."""
    message = (
        f"{where} was installed from the Python package index because no conda channel "
        'answered when this image was built (conda_fallback = "pypi"), so this image has no '
        "conda environment to install into; use pip install, or launch again when the channel "
        "answers"
    )
    script = ["#!/bin/sh", 'printf "%s: " "$(basename "$0")" >&2', f"cat {NO_CONDA} >&2", "exit 1"]
    paths = " ".join(f"/usr/local/bin/{name}" for name in COMMANDS)
    lines = " ".join(shlex.quote(line) for line in script)
    return (
        f"mkdir -p /etc/minibinder && printf '%s\\n' {shlex.quote(message)} > {NO_CONDA}"
        f" && printf '%s\\n' {lines} | tee {paths} >/dev/null && chmod 755 {paths}"
    )
