"""`minibinder install-service`: a systemd unit that runs `minibinder serve` at boot and again
after a failure, with the settings file and the data directory in the standard places."""

from __future__ import annotations

from pathlib import Path

UNIT_PATH = Path("/etc/systemd/system/minibinder.service")
CONFIG_PATH = Path("/etc/minibinder/minibinder.toml")
DATA_DIR = Path("/var/lib/minibinder")


def unit_text(python: str, config_path: Path = CONFIG_PATH, data_dir: Path = DATA_DIR) -> str:
    """The unit. minibinder runs as root: it needs the Docker socket (which is root anyway) and
    installs the egress rules; the rest of the system is read-only to it."""
    return f"""\
[Unit]
Description=minibinder, a single-host Binder
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
Type=simple
ExecStart={python} -m minibinder --config {config_path} serve
Environment=MINIBINDER_DATA_DIR={data_dir}
StateDirectory={data_dir.name}
Restart=on-failure
RestartSec=5
# gunicorn stops its workers gracefully on SIGTERM; sessions keep running and are adopted again.
KillMode=mixed
TimeoutStopSec=30
LimitNOFILE=65536
ProtectSystem=full
ProtectHome=read-only
PrivateTmp=yes
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
"""


NEXT_STEPS = """\
Then:
  systemctl daemon-reload
  systemctl enable --now minibinder
Logs: journalctl -u minibinder -f    Health: minibinder --config {config} doctor
"""
