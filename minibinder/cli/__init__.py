"""The command-line face: `minibinder build | open | prebuild | base-image | serve | sessions |
stop | doctor | install-service | settings | access-code | admin-token | launches | agent`.
May import everything below it, never the web face."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import click

from .. import __version__
from ..config import Config
from ..errors import MinibinderError
from ..events import Event
from ..settings_load import Loaded, load_settings
from .agent_command import agent as agent_command


class Progress:
    """Prints the phase, the elapsed time and the streaming log to stderr."""

    def __init__(self, quiet: bool = False):
        self.started = time.monotonic()
        self.quiet = quiet
        self.phase = ""
        self.partial = ""  # Docker streams chunks, not lines: hold a line until it ends

    def show(self, event: Event) -> None:
        elapsed = time.monotonic() - self.started
        stamp = f"[{int(elapsed // 60):02d}:{elapsed % 60:04.1f} {event.phase:>9}]"
        if event.phase != self.phase:
            self.flush(stamp)
            self.phase = event.phase
            click.secho(f"{stamp} -- {event.phase} --", err=True, bold=True)
        if self.quiet and event.phase == "building":
            return
        text = self.partial + event.message
        if event.phase != "building" and not text.endswith("\n"):
            text += "\n"
        *lines, self.partial = text.split("\n")
        for line in lines:
            if line.strip():
                click.echo(f"{stamp} {line}", err=True)

    def flush(self, stamp: str) -> None:
        if self.partial.strip():
            click.echo(f"{stamp} {self.partial}", err=True)
        self.partial = ""


CONFIG_PATH = "minibinder.config_path"  # in ctx.meta, which every nested context shares
# Commands that read no settings file: install-service writes one (--settings), access-code
# makes a line for one (--write).
NO_SETTINGS = {"install-service", "access-code", "agent"}


def _config_path(ctx: click.Context) -> str | None:
    """--config (before or after the command), else MINIBINDER_CONFIG, else the settings file
    install-service wrote (cli/service.py), else none."""
    from .service import settings_file

    return settings_file(ctx.meta.get(CONFIG_PATH), os.environ)


def _loaded(ctx: click.Context) -> Loaded:
    """The settings, read once, when a command first needs them."""
    if "minibinder.loaded" not in ctx.meta:
        try:
            ctx.meta["minibinder.loaded"] = load_settings(_config_path(ctx), environ=os.environ)
        except MinibinderError as error:
            raise click.ClickException(str(error)) from None
    return ctx.meta["minibinder.loaded"]


def _load(ctx: click.Context) -> Config:
    return _loaded(ctx).config


def _remember_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # The group's option (or MINIBINDER_CONFIG) is read first; a subcommand's comes later and
    # wins: `minibinder --config A serve --config B` reads B.
    if value is not None:
        ctx.meta[CONFIG_PATH] = value


def _config_option() -> click.Option:
    return click.Option(
        ["--config", "config_path"],
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_remember_config,
        help="TOML settings file (also before the command, or MINIBINDER_CONFIG).",
    )


class _Commands(click.Group):
    """Every command that reads settings takes --config after its name, too: `minibinder
    serve --config F` reads like every other option of serve."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if (name or cmd.name) not in NO_SETTINGS:
            cmd.params.append(_config_option())
        super().add_command(cmd, name)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="minibinder")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="MINIBINDER_CONFIG",
    expose_value=False,
    callback=_remember_config,
    help="TOML settings file (or MINIBINDER_CONFIG); also accepted after the command.",
)
def main() -> None:
    """minibinder: a single-host Binder."""


def _run_events(events: Iterator[Event], quiet: bool) -> Event:
    progress = Progress(quiet)
    last = Event("failed", "nothing happened")
    for event in events:
        progress.show(event)
        last = event
    return last


@main.command()
@click.argument("repository")
@click.option("--ref", default=None, help="Branch, tag or commit, for a clone URL (default HEAD).")
@click.option("--dockerfile", "show_dockerfile", is_flag=True, help="Print the Dockerfile only.")
@click.option("--no-cache", is_flag=True, help="Build again even if the image exists.")
@click.option("--quiet", "-q", is_flag=True, help="Do not stream the build log.")
@click.pass_context
def build(
    ctx: click.Context,
    repository: str,
    ref: str | None,
    show_dockerfile: bool,
    no_cache: bool,
    quiet: bool,
) -> None:
    """Build REPOSITORY into an image and print the image name.

    REPOSITORY is a Binder spec (gh/owner/repo/ref, gl/..., git/..., gist/...), a clone URL
    (with --ref), or a local directory.
    """
    from .build_command import build_command

    config = _load(ctx)
    try:
        result = build_command(
            config,
            repository,
            ref,
            show_dockerfile,
            no_cache,
            lambda events: _run_events(events, quiet),
        )
    except MinibinderError as error:
        raise click.ClickException(str(error)) from None
    if result.phase == "failed":
        reason = result.message.strip().splitlines()[0] if result.message.strip() else "failed"
        click.secho(f"Error: {reason}", err=True, fg="red")
        sys.exit(1)
    click.echo(result.data.get("imageName") or result.message, nl=not show_dockerfile)


@main.command("open")
@click.argument("repository")
@click.option("--no-browser", is_flag=True, help="Print the address; open no browser.")
@click.option("--detach", is_flag=True, help="Leave the session running and return at once.")
@click.pass_context
def open_(ctx: click.Context, repository: str, no_browser: bool, detach: bool) -> None:
    """Open REPOSITORY (a directory, as it is on disk, or a spec like gh/owner/repo/HEAD) in a
    session of the running `minibinder serve` (started for the while when none answers), and
    wait: Ctrl-C stops the session. The "does my Binder repository work?" loop."""
    from .open_command import hold, open_repository

    config = _load(ctx)
    try:
        opened = open_repository(
            config,
            _config_path(ctx),
            repository,
            lambda events: _run_events(events, False),
            lambda line: click.echo(line, err=True),
        )
        hold(config, opened, browser=not no_browser, wait=not detach, echo=click.echo)
    except MinibinderError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.pass_context
def prebuild(ctx: click.Context, specs: tuple[str, ...]) -> None:
    """Build SPECS ahead of time (e.g. before a workshop), so the first launch finds them."""
    from .build_command import build_command

    config, failed = _load(ctx), 0
    for spec in specs:
        try:
            result = build_command(
                config, spec, None, False, False, lambda events: _run_events(events, True)
            )
        except MinibinderError as error:
            result = Event("failed", str(error))
        if result.phase == "failed":
            failed += 1
            click.secho(f"{spec}: {result.message.strip().splitlines()[0]}", err=True, fg="red")
        else:
            click.echo(f"{spec}: {result.data.get('imageName')}")
    sys.exit(1 if failed else 0)


@main.command("base-image")
@click.option("--from", "rootfs", help="Image to start from (default: base_rootfs).")
@click.option("--python", "version", help="Which base_images entry (default: default_python).")
@click.option("--force", is_flag=True, help="Build again even if the image exists.")
@click.pass_context
def base_image(ctx: click.Context, rootfs: str | None, version: str | None, force: bool) -> None:
    """Build the base image builds start from (Python, JupyterLab, uv, the jovyan user).

    ROOTFS may be any Debian-like image. One the engine lacks is pulled; where no registry
    answers, minibinder-rootfs:<suite> (bookworm, trixie, bullseye; debian:<suite>-slim too)
    is made with debootstrap (Linux, root).
    """
    from ..builds.base_image import base_image_from
    from ..docker_client import Docker

    config = _load(ctx)
    version = version or config.default_python
    if version not in config.base_images:
        raise click.ClickException(f"base_images has no entry for Python {version}")
    try:
        docker = Docker.connect()
        last = _run_events(
            base_image_from(
                config, docker, rootfs or config.base_rootfs, config.base_images[version], force
            ),
            False,
        )
    except MinibinderError as error:
        raise click.ClickException(str(error)) from None
    click.echo(last.data.get("imageName", ""))


@main.command()
@click.option("--markdown", is_flag=True, help="A Markdown table instead of TOML.")
@click.option(
    "--effective",
    is_flag=True,
    help="The values in force here (settings file, environment, defaults), each with where it "
    "came from.",
)
@click.pass_context
def settings(ctx: click.Context, markdown: bool, effective: bool) -> None:
    """Print every setting with its default and help (config.example.toml), or with
    --effective the values this installation runs with."""
    from ..settings_docs import effective_toml, example_toml, markdown_table

    if effective:
        loaded = _loaded(ctx)
        text = effective_toml(loaded, _config_path(ctx), {"warm_pool": _pool_notes(loaded.config)})
    else:
        text = markdown_table() if markdown else example_toml()
    click.echo(text, nl=False)


def _pool_notes(config: Config) -> list[str]:
    """Pool sizes set while minibinder ran that are in force instead of the file's."""
    from ..sessions.pool import SET, sizes_in_force
    from ..store import Store

    database = config.data_path / "minibinder.sqlite"
    if not database.exists():
        return []
    sizes = sizes_in_force(config.warm_pool, Store(database).pool_overrides())
    return [
        f'in force instead: "{spec}" = {size.size}, {size.why}'
        for spec, size in sorted(sizes.items())
        if size.source == SET
    ]


@main.command("access-code")
@click.option(
    "--write",
    "settings_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Put the two lines into this settings file (above its first [table], replacing "
    "earlier ones) instead of printing them.",
)
def access_code(settings_file: str | None) -> None:
    """Make the settings lines for an access code (access = "code"): asks for the code (or
    reads it from standard input) and prints `access = "code"` and `access_code_hash = "..."`,
    or writes them into a settings file with --write; the code itself is never stored."""
    from ..identity import hash_code
    from ..settings_file import set_top_level

    if sys.stdin.isatty():
        code = click.prompt("Access code", hide_input=True, confirmation_prompt=True)
    else:
        code = sys.stdin.readline().rstrip("\n")
    if not code.strip() or len(code) > 200:
        raise click.ClickException("the access code must be 1 to 200 characters")
    lines = {"access": '"code"', "access_code_hash": f'"{hash_code(code)}"'}
    if settings_file is None:
        click.echo("\n".join(f"{name} = {value}" for name, value in lines.items()))
        click.echo(
            "# Put these lines above the first [table] of the settings file (a line below a "
            "[table] header belongs to that table), or let `minibinder access-code --write "
            "FILE` do it.",
            err=True,
        )
        return
    try:
        set_top_level(settings_file, lines)
    except MinibinderError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote access and access_code_hash into {settings_file}", err=True)


@main.command("admin-token")
@click.pass_context
def admin_token_command(ctx: click.Context) -> None:
    """Print the token of the operator's pages (/admin?token=...)."""
    from ..identity import admin_token

    click.echo(admin_token(_load(ctx)))


@main.command()
@click.option("--since-days", type=float, default=None, help="Only launches of the last N days.")
@click.pass_context
def launches(ctx: click.Context, since_days: float | None) -> None:
    """Export the launch log as JSON Lines (like mybinder.org's events archive)."""
    from ..launch import launch_event, launch_origin
    from ..store import Store

    config = _load(ctx)
    since = time.time() - since_days * 86400 if since_days else 0.0
    rows = Store(config.data_path / "minibinder.sqlite").launches(limit=10**9, since=since)
    for row in reversed(rows):
        click.echo(launch_event(row, launch_origin(config)))


@main.command()
@click.pass_context
def sessions(ctx: click.Context) -> None:
    """List the sessions of this installation (running or starting, warm ones included)."""
    from ..services import create_services
    from .operate import format_table, session_table

    services = create_services(_load(ctx))
    click.echo(format_table(session_table(services)))


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Stop every session and empty the warm pool.")
@click.option(
    "--keep-pool",
    is_flag=True,
    help="With --all: leave the warm pool as it is (its unclaimed sessions keep running).",
)
@click.option("--repo", default=None, help="Stop sessions whose <provider>/<spec> or URL match.")
@click.pass_context
def stop(
    ctx: click.Context, ids: tuple[str, ...], every: bool, keep_pool: bool, repo: str | None
) -> None:
    """Stop sessions: by ID, --all, or --repo REGEX. Nothing of them is kept, but with
    keep_work their owners' changed files (see `minibinder work`).

    --all also sets every warm pool to 0, or a running `serve` would start them again within
    seconds; the settings file's value comes back when it changes, or set it on /admin."""
    from ..services import create_services
    from ..warm_pool import empty_pools
    from .operate import sessions_to_stop

    if sum((bool(ids), every, repo is not None)) != 1:
        raise click.UsageError("name session IDs, or give --all, or --repo REGEX (one of them)")
    if keep_pool and not every:
        raise click.UsageError("--keep-pool goes with --all")
    services = create_services(_load(ctx))
    try:
        chosen = sessions_to_stop(services.store.sessions(), ids, every, repo, keep_pool)
    except MinibinderError as error:
        raise click.ClickException(str(error)) from None
    if every and not keep_pool:
        for spec, size in empty_pools(services, "`minibinder stop --all`").items():
            click.echo(
                f"warm pool {spec}: 0 (was {size}); set it again on /admin, or change its "
                "warm_pool value in the settings file"
            )
    for record in chosen:
        services.sessions.stop(record.id, reason="operator")
        click.echo(f"stopped {record.id} ({record.provider}/{record.spec})")
    if not chosen:
        click.echo("no session matched")


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check that this host is ready: Docker, memory limits, disk, base image, CA file, the
    package index, conda channels, the git provider, egress rules. Exit status 1 when
    something needed is wrong."""
    from ..docker_client import Docker
    from .operate import diagnose, report

    text, healthy = report(diagnose(_load(ctx), Docker.lazy(timeout=10)))
    click.echo(text)
    sys.exit(0 if healthy else 1)


@main.command("install-service")
@click.option("--print", "print_only", is_flag=True, help="Print the unit instead of writing it.")
@click.option(
    "--unit",
    "unit_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the unit (default /etc/systemd/system/minibinder.service).",
)
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The settings file the service reads (default /etc/minibinder/minibinder.toml;"
    " written when missing, with the settings in force now: their data_dir, CA and indexes).",
)
@click.option(
    "--data-dir",
    default="/var/lib/minibinder",
    show_default=True,
    help="The service's data directory, written into a new settings file.",
)
@click.option(
    "--link",
    "link_path",
    default="/usr/local/bin/minibinder",
    show_default=True,
    help="Where to link the minibinder command for root's shell ('' to skip).",
)
@click.pass_context
def install_service(
    ctx: click.Context,
    print_only: bool,
    unit_path: str | None,
    settings_path: str | None,
    data_dir: str,
    link_path: str,
) -> None:
    """Write a systemd unit that runs `minibinder serve` at boot and after failures, and the
    settings file it reads (the one place that says where the installation lives)."""
    import dataclasses
    from pathlib import Path

    from ..settings_docs import example_toml
    from .service import (
        CONFIG_PATH,
        HOST_CA_BUNDLE,
        NEXT_STEPS,
        UNIT_PATH,
        link_minibinder,
        unit_text,
    )

    settings_file = Path(settings_path) if settings_path else CONFIG_PATH
    text = unit_text(sys.executable, settings_file)
    if print_only:
        click.echo(text, nl=False)
        return
    unit = Path(unit_path) if unit_path else UNIT_PATH
    try:
        if not settings_file.exists():
            # The settings in force now (from the environment `make serve` sets, e.g. the
            # extra CA), with the service's own data directory.
            values = dataclasses.replace(_load(ctx), data_dir=data_dir)
            if not values.extra_ca_file and HOST_CA_BUNDLE.is_file():
                values = dataclasses.replace(values, extra_ca_file=str(HOST_CA_BUNDLE))
            settings_file.parent.mkdir(parents=True, exist_ok=True)
            settings_file.write_text(example_toml(values))
            settings_file.chmod(0o600)  # it may hold the admin token or the access code's hash
            click.echo(f"wrote {settings_file} (the settings in force now, data_dir {data_dir})")
        else:
            click.echo(f"kept {settings_file} (its data_dir and every other setting)")
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text(text)
        if link_path:
            script = Path(sys.executable).parent / "minibinder"
            click.echo(link_minibinder(Path(link_path), script))
    except OSError as error:
        raise click.ClickException(f"cannot write {error.filename}: {error.strerror}") from None
    click.echo(f"wrote {unit}")
    click.echo(NEXT_STEPS.format(config=settings_file), nl=False)


@main.command()
@click.argument("keys", nargs=-1)
@click.option("--delete", "delete", is_flag=True, help="Delete the kept work KEYS name.")
@click.option(
    "--owner", default="", help="With --delete: all of one owner's (user:NAME or browser:ID)."
)
@click.option("--all", "every", is_flag=True, help="With --delete: all kept work.")
@click.pass_context
def work(ctx: click.Context, keys: tuple[str, ...], delete: bool, owner: str, every: bool) -> None:
    """List people's kept work (keep_work), or delete some of it."""
    from .operate import format_table
    from .work_command import delete_work, shelf_of, work_rows

    config = _load(ctx)
    shelf = shelf_of(config)
    if not delete:
        if keys or owner or every:
            raise click.UsageError("KEYS, --owner and --all go with --delete")
        click.echo(format_table(work_rows(shelf.all(), config)))
        return
    if not (keys or owner or every):
        raise click.UsageError("--delete needs KEYS, --owner NAME or --all")
    gone = delete_work(shelf, keys, owner, every)
    missing = sorted(set(keys) - set(gone))
    click.echo(f"deleted {len(gone)} kept work folder(s)")
    if missing:
        raise click.ClickException(f"no kept work with the key(s) {', '.join(missing)}")


@main.command()
@click.option("--bind", default=None, help="host:port to listen on (default: the bind setting).")
@click.option("--admin-bind", default=None, help="host:port of the operator's pages.")
@click.pass_context
def serve(ctx: click.Context, bind: str | None, admin_bind: str | None) -> None:
    """Run the minibinder web service (and the operator's pages on their own port)."""
    from ..server import run_server

    config = _load(ctx)
    try:
        run_server(
            config, bind or config.bind, admin_bind or "", lambda events: _run_events(events, False)
        )
    except MinibinderError as error:
        raise click.ClickException(str(error)) from None


main.add_command(agent_command)
