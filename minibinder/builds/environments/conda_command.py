"""`mamba` and `conda` inside an image of a conda environment: install, remove and list packages
of the notebook environment, for postBuild scripts (`mamba install -y make`) and terminals.

Not imported by minibinder: the environment step copies this file into the environment image,
where the base image's Python runs it. It solves and installs with rattler, the solver that made
the environment, against the channels the environment was made from (or `-c`); rattler itself
(the version the host used) is fetched from the package index on first use, so images whose
postBuild never asks for it do not carry its 80 MB. It knows only this image's one environment.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOME = Path(__file__).resolve().parent  # /srv/conda/minibinder in the image
SETTINGS = "settings.json"  # written by the environment step: prefix, channels, rattler version
SOLVER = "solver"  # where rattler is installed on first use
SUPPORTED = "install, update, remove, list and clean"


class Refused(Exception):
    """What the user asked for cannot be done; the message says why and what would work."""


@dataclass(frozen=True)
class Settings:
    prefix: str
    channels: tuple[str, ...]
    channel_alias: str
    rattler: str  # py-rattler's version

    @classmethod
    def read(cls, folder: Path) -> Settings:
        data = json.loads((folder / SETTINGS).read_text())
        return cls(data["prefix"], tuple(data["channels"]), data["channel_alias"], data["rattler"])


@dataclass
class Request:
    action: str
    specs: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    override_channels: bool = False
    yes: bool = False
    dry_run: bool = False


def _parser(program: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program,
        description=f"minibinder's {program}: {SUPPORTED} packages of this image's conda "
        "environment (solved by rattler).",
    )
    parser.add_argument("--version", "-V", action="store_true")
    actions = parser.add_subparsers(dest="action")
    for name in ("install", "update", "upgrade", "remove", "uninstall", "list", "clean"):
        action = actions.add_parser(name)
        action.add_argument("specs", nargs="*")
        action.add_argument("-c", "--channel", action="append", default=[])
        action.add_argument("--override-channels", action="store_true")
        action.add_argument("-y", "--yes", action="store_true")
        action.add_argument("-d", "--dry-run", action="store_true")
        action.add_argument("-n", "--name")
        action.add_argument("-p", "--prefix")
        for flag in ("-q", "--quiet", "--all", "-a", "--freeze-installed", "--no-update-deps"):
            action.add_argument(flag, action="store_true", dest=f"ignored{flag.strip('-')}")
    return parser


def parse_arguments(program: str, argv: list[str], prefix: str) -> Request:
    """What was asked for; Refused for what this command does not do."""
    known = {"install", "update", "upgrade", "remove", "uninstall", "list", "clean"}
    first = next((word for word in argv if not word.startswith("-")), "")
    if first and first not in known:
        raise Refused(
            f"`{program} {first}` is not supported here: minibinder's {program} does {SUPPORTED} "
            f"in the notebook environment ({prefix}); use pip for Python packages from PyPI"
        )
    arguments = _parser(program).parse_args(argv)
    if arguments.version:
        return Request("version")
    if not arguments.action:
        raise Refused(f"say what to do: {program} install|remove|list|clean …")
    name, path = arguments.name, arguments.prefix
    if name not in (None, "notebook", "base") or path not in (None, prefix):
        raise Refused(
            f"this image has one conda environment, {prefix} (-n notebook); "
            f"{program} cannot {arguments.action} elsewhere"
        )
    action = {"uninstall": "remove", "upgrade": "update"}.get(arguments.action, arguments.action)
    if action in ("install", "remove") and not arguments.specs:
        raise Refused(f"name the packages to {action}: {program} {action} -y make")
    return Request(
        action,
        list(arguments.specs),
        list(arguments.channel),
        arguments.override_channels,
        arguments.yes,
        arguments.dry_run,
    )


def channel_urls(request: Request, settings: Settings) -> list[str]:
    """`-c` channels first (names under the channel alias), then the environment's own."""
    alias = settings.channel_alias.rstrip("/")
    named = [c.rstrip("/") if "://" in c else f"{alias}/{c}" for c in request.channels]
    chosen = named if request.override_channels else named + list(settings.channels)
    return list(dict.fromkeys(chosen))


def load_rattler(settings: Settings, program: str) -> Any:
    """rattler, installed from the package index into SOLVER the first time it is needed."""
    target = HOME / SOLVER
    sys.path.insert(0, str(target))
    try:
        return importlib.import_module("rattler")
    except ImportError:
        pass
    wanted = f"py-rattler=={settings.rattler}"
    print(f"{program}: fetching the conda solver ({wanted}) from the package index", flush=True)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    into = ["--quiet", "--target", str(target)]
    attempts = [
        [uv, "pip", "install", "--python", sys.executable, *into],
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", *into],
    ]
    for command in attempts:
        if Path(command[0]).exists() and subprocess.run([*command, wanted]).returncode == 0:
            importlib.invalidate_caches()
            return importlib.import_module("rattler")
    raise Refused(
        f"the conda solver ({wanted}) could not be installed from the package index, which "
        "minibinder's conda command needs; it answers where the build's pip does"
    )


def installed(rattler: Any, prefix: str) -> list[Any]:
    meta = Path(prefix) / "conda-meta"
    return [rattler.PrefixRecord.from_path(path) for path in sorted(meta.glob("*.json"))]


def _describe(error: Exception, channels: list[str]) -> str:
    kind, text = type(error).__name__, " ".join(str(error).split())
    if kind == "SolverError":
        return f"the packages cannot be solved: {text}"
    if kind in ("GatewayError", "FetchRepoDataError", "TimeoutError") or "timed out" in text:
        return f"no conda channel answers ({', '.join(channels)}): {text}"
    return f"{kind}: {text}"


def change(rattler: Any, request: Request, settings: Settings, program: str) -> int:
    """Install, update or remove: solve the environment's packages with the change, then let
    rattler make the prefix match (unchanged packages are kept, as locked ones)."""
    channels = channel_urls(request, settings)
    present = installed(rattler, settings.prefix)
    names = [record.name.normalized for record in present]
    if request.action == "remove":
        gone = {rattler.MatchSpec(spec).name.normalized for spec in request.specs}
        missing = gone - set(names)
        if missing:
            raise Refused(f"not installed: {', '.join(sorted(missing))}")
        specs = [name for name in names if name not in gone]
    else:
        asked = {rattler.MatchSpec(spec).name.normalized for spec in request.specs}
        specs = [name for name in names if name not in asked] + request.specs
    locked = [] if request.action == "update" else present
    print(f"{program}: solving with {', '.join(channels)}", flush=True)

    async def run() -> list[Any]:
        records = await rattler.solve(
            channels,
            specs,
            platforms=[str(rattler.Platform.current()), "noarch"],
            locked_packages=locked,
            virtual_packages=rattler.VirtualPackage.detect(),
            timeout=datetime.timedelta(seconds=600),
        )
        if request.action == "remove":
            back = gone & {record.name.normalized for record in records}
            if back:
                raise Refused(f"other packages need {', '.join(sorted(back))}; not removed")
        if not request.dry_run:
            cache = tempfile.mkdtemp(prefix="minibinder-conda-")
            try:
                await rattler.install(
                    records,
                    target_prefix=settings.prefix,
                    installed_packages=present,
                    cache_dir=Path(cache),
                    execute_link_scripts=True,
                    show_progress=False,
                )
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        return records

    try:
        records = asyncio.run(run())
    except Refused:
        raise
    except Exception as error:  # rattler raises its own exception classes
        raise Refused(_describe(error, channels)) from None
    before = {r.name.normalized: f"{r.version}-{r.build}" for r in present}
    after = {r.name.normalized: f"{r.version}-{r.build}" for r in records}
    for name in sorted(before.keys() | after.keys()):
        if before.get(name) != after.get(name):
            old, new = before.get(name), after.get(name)
            sign = "+" if old is None else "-" if new is None else "~"
            print(f"  {sign} {name} {new or old}" + (f" (was {old})" if old and new else ""))
    print("Dry run: nothing changed." if request.dry_run else "Done.")
    return 0


def main(argv: list[str]) -> int:
    program = Path(argv[0]).name if argv else "conda"
    settings = Settings.read(HOME)
    try:
        request = parse_arguments(program, argv[1:], settings.prefix)
        if request.action == "version":
            print(f"{program} (minibinder's, over py-rattler {settings.rattler})")
            return 0
        if request.action == "clean":
            print(f"{program}: nothing to clean (no package cache is kept in the image)")
            return 0
        rattler = load_rattler(settings, program)
        if request.action == "list":
            for record in installed(rattler, settings.prefix):
                channel = str(record.channel or "").rstrip("/").rsplit("/", 1)[-1]
                name, version, build = (
                    record.name.normalized,
                    str(record.version),
                    str(record.build),
                )
                print(f"{name:<32} {version:<16} {build:<24} {channel}")
            return 0
        return change(rattler, request, settings, program)
    except Refused as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
