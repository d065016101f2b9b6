"""The README's operator sections, run as written (#22): every command they show is extracted and
must be in COMMANDS, which says how this test runs it or why it does not; the ones marked RUN
are run as their text says, in a temporary root (tests/support/temp_root.py: /etc,
/usr/local/bin and /var/lib are overlays) with only these changes: the ports 8585, 8586 and 9418
become free ones, /srv/git a temporary folder, `<owner>/<repo>` and `ID…` real ones, and the
shell has a temporary data directory, the tests' image prefix and the free port as `bind`. A
README that drifts from the code, or gains a command nobody runs, fails here."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..conftest import TEST_IMAGE_PREFIX
from ..support import temp_root
from ..support.gitserver import GitServer, free_port
from ..support.sse import browser_events
from .test_e2e import ROOT

SECTIONS = ("Running the service", "Operating a server", "Settings")
COMMAND_WORDS = ("minibinder ", "sudo ", ".venv/bin/minibinder ", "curl ", "make ", "pip ",
                 "docker ", "git daemon ")  # fmt: skip
RUN = "run here"
RAN: set[str] = set()  # what the tests of this module ran, for the last one
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'

# Every command of the operator sections: RUN, or why not (and where else it is tested).
COMMANDS = {
    # -- Running the service
    "make serve": RUN,
    ".venv/bin/minibinder serve": RUN,
    "MINIBINDER_BIND=0.0.0.0:8585 make serve": RUN,
    "git daemon --export-all --base-path=/srv/git --listen=127.0.0.1 --port=9418 &": RUN,
    "MINIBINDER_ALLOWED_CLONE_SCHEMES=https,git MINIBINDER_INTERNAL_HOSTS=127.0.0.1 "
    "MINIBINDER_GITHUB_URL=git://127.0.0.1:9418 make serve": RUN,
    "open http://127.0.0.1:8585/v2/gh/<owner>/<repo>/HEAD": RUN,
    "MINIBINDER_ADMIN_BIND=127.0.0.1:8586": RUN,
    # -- Operating a server
    "minibinder launches": RUN,
    'curl -H "Authorization: Bearer $(minibinder admin-token)" '
    "http://127.0.0.1:8586/admin/launches.jsonl": RUN,
    "minibinder admin-token": RUN,
    "minibinder prebuild gh/org/workshop/HEAD": RUN,
    "minibinder doctor": RUN,
    "minibinder sessions": RUN,
    "minibinder stop ID…": RUN,
    "minibinder stop --all": RUN,
    "make bench-workshop": "a benchmark (minutes, 40 sessions): bench/, results in RESULTS.md",
    "make bench-kept-work": "a benchmark (minutes): bench/, results in RESULTS.md",
    "minibinder stop": "named in prose; its forms `stop ID…` and `stop --all` run here",
    "docker diff": "named in prose: how kept work is found, not a command to type",
    "minibinder work": (
        "test_kept_work.py::test_the_operator_and_the_owner_see_and_delete_kept_work"
    ),
    "minibinder work --delete KEY…": (
        "test_kept_work.py::test_the_operator_deletes_kept_work_by_key"
    ),
    "minibinder access-code --write minibinder.toml": RUN,
    "sudo .venv/bin/minibinder install-service": RUN,
    "sudo minibinder …": "a pattern: its cases (doctor, admin-token, sessions, stop) run here",
    "sudo minibinder doctor": RUN,
    "sudo systemctl daemon-reload && sudo systemctl enable --now minibinder": (
        "would start a service on this host: systemd-analyze verifies the unit in "
        "test_operate.py, and the unit's ExecStart line runs here instead"
    ),
    "make base-image": "run by every `make serve` here (a prerequisite) and by `make test`",
    "pip wheel --no-deps -w deploy/dist .": (
        "test_operate.py::test_minibinder_in_a_container_launches_a_session (its own folder)"
    ),
    "docker build -f deploy/Dockerfile -t minibinder deploy": (
        "test_operate.py::test_minibinder_in_a_container_launches_a_session (a test tag)"
    ),
    # -- Settings
    ".venv/bin/minibinder --config /etc/minibinder/minibinder.toml doctor": RUN,
    ".venv/bin/minibinder serve --config /etc/minibinder/minibinder.toml": RUN,
    "MINIBINDER_CONFIG=/etc/minibinder/minibinder.toml make serve": RUN,
    ".venv/bin/minibinder settings --effective --config /etc/minibinder/minibinder.toml": RUN,
    "minibinder serve": "the same command as `.venv/bin/minibinder serve`, run here",
    "minibinder settings --effective": RUN,
}


def readme_commands(text: str) -> set[str]:
    """The shell lines of the sections' ```sh blocks (continuations joined, comments dropped
    except "# then open URL"), and their inline code that starts with a command."""
    found = set()
    for title in SECTIONS:
        start = text.index(f"\n## {title}\n")
        body = text[start : text.index("\n## ", start + 1)].split("\n| Setting |")[0]
        for block in re.findall(r"```sh\n(.*?)```", body, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                command, _, comment = line.partition("#")
                if command.strip():
                    found.add(" ".join(command.split()))
                opened = re.match(r"\s*then open (\S+)", comment)
                if opened and not command.strip():
                    found.add(f"open {opened.group(1)}")
        prose = re.sub(r"```sh\n.*?```", "", body, flags=re.S)
        for span in re.findall(r"`([^`]+)`", prose):
            span = " ".join(span.split())
            named = span in ("make serve", "minibinder serve")
            assignment = re.fullmatch(r"MINIBINDER_[A-Z_]+=\S+", span)  # for `make serve`
            if span.startswith(COMMAND_WORDS) or named or assignment:
                found.add(span)
    return found


def test_every_operator_command_is_listed_with_how_it_is_checked():
    found = readme_commands((ROOT / "README.md").read_text())
    assert found - COMMANDS.keys() == set(), "new in the README: add them to COMMANDS"
    assert COMMANDS.keys() - found == set(), "no longer in the README: remove from COMMANDS"


def two_free_ports() -> int:
    """A port whose next one is free too (the README's 8585 and 8586)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two free ports in a row")


def own_address() -> str:
    """One of this host's own non-loopback addresses (what students type: the VM's IP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:  # the address of the default route; a UDP connect sends nothing
            probe.connect(("192.0.2.1", 9))
            return probe.getsockname()[0]
        except OSError:  # no route: any IP address stands for it on 0.0.0.0
            return "198.51.100.20"


def failures(doctor: str) -> list[str]:
    """What `doctor` found wrong, besides the public hosts this machine cannot reach (GitHub:
    only PyPI, Debian and npm answer here)."""
    return [
        line
        for line in doctor.splitlines()
        if line.startswith("FAIL") and "does not answer" not in line
    ]


def status_of(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=10
        ) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_health(url: str, process, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if status_of(f"{url}/health") == 200:
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"it exited: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-3000:]}")


class Operator:
    """Runs the README's text in the temporary root, with the substitutions the module says,
    and remembers which commands it ran."""

    def __init__(self, root: temp_root.TempRoot, folder: Path, srv_git: Path, git_port: int):
        self.root, self.folder = root, folder
        self.port = two_free_ports()
        self.replacements = {
            "8585": str(self.port),
            "8586": str(self.port + 1),
            "9418": str(git_port),
            "/srv/git": str(srv_git),
            "<owner>/<repo>": "org/workshop",
        }
        venv_bin = Path(sys.executable).parent
        self.env = {
            "PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(folder),
            "LANG": "C.UTF-8",
            "MINIBINDER_DATA_DIR": str(folder / "data"),
            # The default, 127.0.0.1:8585, on the free port: commands that name no address
            # listen there, the operator's pages on the next port, as with the default.
            "MINIBINDER_BIND": f"127.0.0.1:{self.port}",
            "MINIBINDER_IMAGE_PREFIX": TEST_IMAGE_PREFIX,
        }
        ca = os.environ.get("MINIBINDER_EXTRA_CA_FILE", "")
        if ca:
            self.env["MINIBINDER_EXTRA_CA_FILE"] = ca
        self.logs = 0

    def text(self, command: str, **more: str) -> str:
        assert command in COMMANDS and COMMANDS[command] == RUN, command
        RAN.add(command)
        for old, new in {**self.replacements, **more}.items():
            command = command.replace(old, new)
        return command

    def run(self, command: str, stdin: str = "", env: dict | None = None, cwd=ROOT, **more):
        result = self.root.run(
            self.text(command, **more), env if env is not None else self.env, cwd, stdin=stdin
        )
        return result

    def start(self, command: str, env: dict | None = None, **more):
        self.logs += 1
        log = self.folder / f"service{self.logs}.log"
        process = self.root.start(
            self.text(command, **more), env if env is not None else self.env, ROOT, log
        )
        return process, log

    def serve(self, command: str, env: dict | None = None, **more):
        """Start a service as the README says, wait until it answers, return it."""
        process, log = self.start(command, env, **more)
        wait_health(f"http://127.0.0.1:{self.port}", process, log)
        return process


@pytest.fixture
def operator(tmp_path):
    why = temp_root.available()
    if not (ROOT / ".venv/bin/minibinder").exists():
        why = "the README's commands run .venv/bin/minibinder: make venv first"
    if why:
        pytest.skip(why)
    srv_git = tmp_path / "srv-git"
    repos = GitServer(srv_git)  # its repositories; the README's own git daemon serves them
    repos.create("org/workshop", {"index.ipynb": NOTEBOOK})
    with temp_root.TempRoot(tmp_path / "root") as root:
        yield Operator(root, tmp_path, srv_git, repos.port)
    from ..support.serving import remove_test_sessions

    remove_test_sessions(TEST_IMAGE_PREFIX + "127-0-0-1-" + str(repos.port))


def test_running_and_operating_a_server_as_the_readme_says(operator):
    """`make serve` on every interface, then on loopback with the README's git daemon: a launch
    of the link it gives, prebuild, the launch export, doctor, sessions, stop, the access code."""
    env = operator.env
    # On every interface, with the host name the README's next sentence sets as public_url;
    # the operator's pages on the next port.
    port, admin = operator.port, operator.port + 1
    named = {**env, "MINIBINDER_PUBLIC_URL": f"http://workshop.example.org:{port}/"}
    service = operator.serve("MINIBINDER_BIND=0.0.0.0:8585 make serve", env=named)
    assert operator.text("make serve") and operator.text(".venv/bin/minibinder serve")
    # Exactly these names are answered: public_url's, loopback's, any IP address (on 0.0.0.0).
    for host, status in (
        (f"workshop.example.org:{port}", 200),
        (f"127.0.0.1:{port}", 200),
        (f"localhost:{port}", 200),
        (f"{own_address()}:{port}", 200),
        (f"attacker.example:{port}", 400),
    ):
        assert status_of(f"http://127.0.0.1:{port}/health", {"Host": host}) == status, host
    for host in (f"workshop.example.org:{admin}", f"127.0.0.1:{admin}"):
        assert status_of(f"http://127.0.0.1:{admin}/admin/", {"Host": host}) in (401, 403), host
    assert status_of(f"http://127.0.0.1:{port}/admin/") == 404  # never beside sessions
    operator.root.stop(service)
    # MINIBINDER_ADMIN_BIND keeps them on the VM itself.
    admin_bind = operator.text("MINIBINDER_ADMIN_BIND=127.0.0.1:8586")
    effective = operator.root.run(f"{admin_bind} minibinder settings --effective", env, ROOT)
    assert re.search(
        rf"admin_bind = \"127.0.0.1:{operator.port + 1}\".*environment", effective.stdout
    ), effective.stdout + effective.stderr

    # Repositories from this machine.
    git_daemon = operator.text(
        "git daemon --export-all --base-path=/srv/git --listen=127.0.0.1 --port=9418 &"
    )
    # In the foreground of its own process group here, so that the test can stop it.
    daemon = operator.root.start(git_daemon.rstrip("& "), env, ROOT, operator.folder / "git.log")
    service = operator.serve(
        "MINIBINDER_ALLOWED_CLONE_SCHEMES=https,git MINIBINDER_INTERNAL_HOSTS=127.0.0.1 "
        "MINIBINDER_GITHUB_URL=git://127.0.0.1:9418 make serve"
    )
    # The shell's commands see what `make serve` was given (an operator exports it).
    git_url = f"git://127.0.0.1:{operator.replacements['9418']}"
    shell = {
        **env,
        "MINIBINDER_ALLOWED_CLONE_SCHEMES": "https,git",
        "MINIBINDER_INTERNAL_HOSTS": "127.0.0.1",
        "MINIBINDER_GITHUB_URL": git_url,
    }
    built = operator.run("minibinder prebuild gh/org/workshop/HEAD", env=shell)
    assert built.returncode == 0, built.stderr[-3000:]
    link = operator.text("open http://127.0.0.1:8585/v2/gh/<owner>/<repo>/HEAD").split()[1]
    assert status_of(link) == 200
    base, spec = link.split("/v2/")
    ready = browser_events(base, spec)[-1]
    assert ready["phase"] == "ready", ready

    listed = operator.run("minibinder sessions", env=shell)
    assert listed.returncode == 0 and "org/workshop" in listed.stdout, listed
    session = next(line.split()[0] for line in listed.stdout.splitlines() if "org/workshop" in line)
    exported = operator.run(
        'curl -H "Authorization: Bearer $(minibinder admin-token)" '
        "http://127.0.0.1:8586/admin/launches.jsonl",
        env=shell,
    )
    assert operator.text("minibinder admin-token")
    launches = [json.loads(line) for line in exported.stdout.splitlines()]
    assert exported.returncode == 0 and launches, exported
    assert any("org/workshop" in launch["spec"] for launch in launches), launches
    cli_export = operator.run("minibinder launches", env=shell)
    assert cli_export.returncode == 0 and "org/workshop" in cli_export.stdout, cli_export
    doctor = operator.run("minibinder doctor", env=shell)
    assert str(operator.folder / "data") in doctor.stdout, doctor.stdout + doctor.stderr
    assert doctor.returncode in (0, 1) and not failures(doctor.stdout), doctor.stdout
    stopped = operator.run("minibinder stop ID…", env=shell, **{"ID…": session})
    assert stopped.returncode == 0, stopped
    assert session not in operator.run("minibinder sessions", env=shell).stdout
    emptied = operator.run("minibinder stop --all", env=shell)
    assert emptied.returncode == 0, emptied
    operator.root.stop(service)
    operator.root.stop(daemon)

    # A workshop's access code, into a settings file that ends with a table.
    settings = operator.folder / "minibinder.toml"
    settings.write_text('bind = "127.0.0.1:8585"\n\n[warm_pool]\n"gh/org/workshop/HEAD" = 2\n')
    wrote = operator.run(
        "minibinder access-code --write minibinder.toml", stdin="open sesame\n", cwd=operator.folder
    )
    assert wrote.returncode == 0, wrote.stderr
    from minibinder.identity import code_matches
    from minibinder.settings_load import load_config

    config = load_config(settings)
    assert config.access == "code" and code_matches("open sesame", config.access_code_hash)
    assert config.warm_pool == {"gh/org/workshop/HEAD": 2}


def test_installed_as_a_service_as_the_readme_says(operator):
    """`sudo .venv/bin/minibinder install-service` into the temporary root; the unit's own
    ExecStart; then `sudo minibinder doctor` (admin-token, sessions, stop) with no --config
    see the service's data directory and token; then the Settings section's commands."""
    root = operator.root
    installed = operator.run("sudo .venv/bin/minibinder install-service")
    assert installed.returncode == 0, installed.stderr
    settings = root.path("/etc/minibinder/minibinder.toml")
    written = settings.read_text()
    assert 'data_dir = "/var/lib/minibinder"' in written
    ca = operator.env.get("MINIBINDER_EXTRA_CA_FILE")
    if ca:  # what `make serve` passes, although sudo dropped the variable
        assert f'extra_ca_file = "{ca}"' in written, written
    assert root.path("/usr/local/bin/minibinder").is_symlink()
    # The operator moves it to free ports (and the tests' image prefix) in the file.
    # (Inside the root: an overlay's upper folder is not to be changed from outside.)
    lines = {
        "bind": f'"127.0.0.1:{operator.port}"',
        "admin_bind": f'"127.0.0.1:{operator.port + 1}"',
        "image_prefix": f'"{TEST_IMAGE_PREFIX}"',
    }
    edit = (
        f"{shlex.quote(sys.executable)} -c 'import sys; from minibinder.settings_file "
        "import set_top_level; set_top_level(sys.argv[1], eval(sys.argv[2]))' "
        f"/etc/minibinder/minibinder.toml {shlex.quote(repr(lines))}"
    )
    edited = root.run(edit, operator.env, ROOT)
    assert edited.returncode == 0, edited.stderr
    unit = root.path("/etc/systemd/system/minibinder.service").read_text()
    exec_start = next(
        line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")
    )
    # systemd starts it with an empty environment: no MINIBINDER_* variable.
    bare = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    process = root.start(exec_start, bare, ROOT, operator.folder / "unit.log")
    wait_health(f"http://127.0.0.1:{operator.port}", process, operator.folder / "unit.log")
    assert (root.path("/var/lib/minibinder") / "minibinder.sqlite").exists()
    # The shell's commands without --config, as root's shell runs them through sudo.
    doctor = operator.run("sudo minibinder doctor")
    assert "/var/lib/minibinder" in doctor.stdout, doctor.stdout + doctor.stderr
    assert doctor.returncode in (0, 1) and not failures(doctor.stdout), doctor.stdout
    for case in ("admin-token", "sessions", "stop --all"):
        ran = root.run(f"sudo minibinder {case}", operator.env, ROOT)
        assert ran.returncode == 0, (case, ran.stdout, ran.stderr)
        if case == "admin-token":  # the service's token, not one of the shell's own
            assert (
                status_of(
                    f"http://127.0.0.1:{operator.port + 1}/admin/",
                    {"Authorization": f"Bearer {ran.stdout.strip()}"},
                )
                == 200
            )
    root.stop(process)

    # The Settings section, with the file install-service wrote.
    doctor = operator.run(
        ".venv/bin/minibinder --config /etc/minibinder/minibinder.toml doctor", env=bare
    )
    assert "/var/lib/minibinder" in doctor.stdout, doctor.stdout + doctor.stderr
    assert doctor.returncode in (0, 1) and not failures(doctor.stdout), doctor.stdout
    for command in (
        ".venv/bin/minibinder settings --effective --config /etc/minibinder/minibinder.toml",
        "minibinder settings --effective",  # the file install-service wrote, without --config
    ):
        ran = operator.run(command, env=bare)
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
        assert 'data_dir = "/var/lib/minibinder"  # file /etc/minibinder/minibinder.toml' in (
            ran.stdout
        ), (command, ran.stdout)
    for command in (
        ".venv/bin/minibinder serve --config /etc/minibinder/minibinder.toml",
        "MINIBINDER_CONFIG=/etc/minibinder/minibinder.toml make serve",
    ):
        service = operator.serve(command, env=bare)
        root.stop(service)


def test_every_command_marked_run_was_run():
    """The last of this module: what COMMANDS marks RUN, the two tests above ran."""
    if not RAN:
        pytest.skip("the tests above did not run")
    assert {command for command, how in COMMANDS.items() if how == RUN} - RAN == set()
