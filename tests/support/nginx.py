"""Debian's nginx as the lab's web server in front of minibinder: TLS terminated with the test's
certificate, minibinder under a path prefix, WebSockets passed on, the client's address and
scheme forwarded, and (optionally) HTTP basic authentication naming the user in a header, as
Apache's mod_auth_* or oauth2-proxy would."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .gitserver import free_port
from .tls import TestCertificates

CONFIG = """
user root;  # the test's files are readable by root only
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log {folder}/access.log;
  client_body_temp_path {folder}/body;
  proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {certificate};
    ssl_certificate_key {key};
    location {prefix}/ {{
      {auth}
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"""
BASIC_AUTH = """auth_basic "lab";
      auth_basic_user_file {folder}/htpasswd;
      proxy_set_header X-Forwarded-User $remote_user;"""


class Nginx:
    def __init__(
        self,
        folder: Path,
        upstream: int,
        certificates: TestCertificates,
        prefix: str = "/binder",
        users: dict[str, str] | None = None,
    ):
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        auth = ""
        if users:
            lines = [
                f"{name}:"
                + subprocess.run(
                    ["openssl", "passwd", "-apr1", password],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                for name, password in users.items()
            ]
            (folder / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = BASIC_AUTH.format(folder=folder)
        (folder / "nginx.conf").write_text(
            CONFIG.format(
                folder=folder,
                port=self.port,
                certificate=certificates.certificate,
                key=certificates.key,
                prefix=prefix,
                upstream=upstream,
                auth=auth,
            )
        )
        self.url = f"https://127.0.0.1:{self.port}{prefix}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [
                binary,
                "-p",
                str(self.folder),
                "-c",
                str(self.folder / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    said = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RuntimeError(f"nginx exited: {said}") from None
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
