"""`minibinder install-service`: a systemd unit that runs `minibinder serve` at boot and again
after a failure. The settings file is the one source of truth about the installation (its data
directory included): the unit names it with --config, and the shell's commands find it at the
same place when they are given none (`settings_file`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

UNIT_PATH = Path("/etc/systemd/system/minibinder.service")
CONFIG_PATH = Path("/etc/minibinder/minibinder.toml")
# The CA bundle `make serve` trusts in builds (the Makefile's MINIBINDER_EXTRA_CA_FILE): the
# service trusts it too, although `sudo` drops the variable on the way to install-service.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def settings_file(given: str | None, environ: Mapping[str, str]) -> str | None:
    """Which settings file a command reads: --config, else MINIBINDER_CONFIG, else the one
    install-service wrote (so `minibinder doctor` in a shell sees the service's installation),
    else none (every default)."""
    if given:
        return given
    if environ.get("MINIBINDER_CONFIG"):
        return environ["MINIBINDER_CONFIG"]
    return str(CONFIG_PATH) if CONFIG_PATH.is_file() else None


def unit_text(python: str, config_path: Path = CONFIG_PATH) -> str:
    """The unit. minibinder runs as root: it needs the Docker socket (which is root anyway) and
    installs the egress rules; the rest of the system is read-only to it. Everything about the
    installation is in the settings file it names; nothing rides in the unit's environment."""
    return f"""\
[Unit]
Description=minibinder, a single-host Binder
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
Type=simple
ExecStart={python} -m minibinder --config {config_path} serve
StateDirectory=minibinder
Restart=on-failure
RestartSec=5
# gunicorn stops its workers gracefully on SIGTERM; sessions keep running and are adopted again.
KillMode=mixed
TimeoutStopSec=30
LimitNOFILE=65536
ProtectSystem=full
ProtectHome=read-only
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
"""


NEXT_STEPS = """\
Then:
  systemctl daemon-reload
  systemctl enable --now minibinder
Logs: journalctl -u minibinder -f    Health: minibinder --config {config} doctor
(/etc/minibinder/minibinder.toml is read without --config, as the service reads it)
"""


def link_minibinder(link: Path, script: Path) -> str:
    """Put `minibinder` on root's PATH as a symlink to this installation's script, so the
    README's `sudo minibinder …` runs as written. Returns what was done, for the output."""
    if link.is_symlink() and link.resolve() == script.resolve():
        return f"{link} already runs {script}"
    if link.exists() or link.is_symlink():
        return f"left {link} as it is (not this installation's); run {script} instead"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(script)
    return f"linked {link} -> {script}"
