"""A temporary root for commands that write where an operator's do (/etc, /usr/local/bin,
/var/lib): a private mount namespace in which those folders are overlays whose changes land in
a temporary folder. Commands run in it as written; the host's own folders never change.
Needs root (unshare, mount) and overlayfs."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

OVERLAID = ("/etc", "/usr/local/bin", "/var/lib")
# What Debian's sudo passes on (env_reset, secure_path): none of the caller's variables.
SUDO = """#!/bin/sh
# sudo as Debian's default sudoers runs a command: the caller's environment is reset.
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \\
  LANG=C.UTF-8 "$@"
"""


def available() -> str:
    """Why a temporary root cannot be made here, or "" when it can."""
    if os.geteuid() != 0:
        return "needs root (a mount namespace with overlays)"
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        return "needs unshare and nsenter (util-linux)"
    return ""


class TempRoot:
    """`run`/`start` a shell command inside the namespace; `path(p)` is where the change an
    absolute path `p` got inside it is kept (after the command made it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.holder: subprocess.Popen | None = None
        self.started: list[subprocess.Popen] = []

    def __enter__(self) -> TempRoot:
        mounts = []
        for number, target in enumerate(OVERLAID):
            layer = self.folder / f"layer{number}"
            (layer / "upper").mkdir(parents=True)
            (layer / "work").mkdir()
            mounts.append(
                f"mount -t overlay overlay -o lowerdir={target},upperdir={layer}/upper,"
                f"workdir={layer}/work {target}"
            )
        script = " && ".join([*mounts, "echo ready", "exec sleep 86400"])
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = self.holder.stdout.readline() if self.holder.stdout else b""
        if first.strip() != b"ready":
            self.holder.wait(10)
            error = self.holder.stderr.read().decode() if self.holder.stderr else ""
            raise RuntimeError(f"no temporary root: {error}")
        self.bin = self.folder / "bin"  # the sudo above, when the host has none
        self.bin.mkdir()
        if not shutil.which("sudo"):
            (self.bin / "sudo").write_text(SUDO)
            (self.bin / "sudo").chmod(0o755)
        return self

    def _command(self, command: str, cwd: Path) -> list[str]:
        assert self.holder
        # Entering a mount namespace moves to its root folder: go back to cwd first.
        in_cwd = f"cd {shlex.quote(str(cwd))} && {command}"
        return ["nsenter", f"--target={self.holder.pid}", "--mount", "--", "sh", "-c", in_cwd]

    def run(self, command: str, env: dict, cwd: Path, stdin: str = "", timeout: float = 300):
        """Run `command` (shell text) to its end; the CompletedProcess, text output."""
        return subprocess.run(
            self._command(command, cwd),
            env=self._env(env),
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, command: str, env: dict, cwd: Path, log: Path) -> subprocess.Popen:
        """Start `command` in the background, in a process group of its own (stopped with the
        root, or by `stop`)."""
        with open(log, "ab") as output:
            process = subprocess.Popen(
                self._command(command, cwd),
                env=self._env(env),
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def _env(self, env: dict) -> dict:
        return {**env, "PATH": f"{self.bin}:{env.get('PATH', os.environ['PATH'])}"}

    @staticmethod
    def stop(process: subprocess.Popen, timeout: float = 30) -> None:
        """SIGTERM to the whole group (make and the minibinder it runs), as Ctrl-C would, then
        wait until every process of the group is gone (make does not wait for its child)."""
        deadline = time.monotonic() + timeout
        try:
            os.killpg(process.pid, signal.SIGTERM)
            while time.monotonic() < deadline:
                process.poll()
                os.killpg(process.pid, 0)  # raises once the group is empty
                time.sleep(0.1)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def path(self, inside: str) -> Path:
        """Where the namespace's version of `inside` (under an overlaid folder) is kept."""
        for number, target in enumerate(OVERLAID):
            if inside == target or inside.startswith(target + "/"):
                relative = inside[len(target) :].lstrip("/")
                return self.folder / f"layer{number}" / "upper" / relative
        raise ValueError(f"{inside} is not under {', '.join(OVERLAID)}")

    def __exit__(self, *exc) -> None:
        for process in self.started:
            self.stop(process)
        if self.holder:
            if self.holder.poll() is None:
                self.holder.kill()
                self.holder.wait()
            for pipe in (self.holder.stdout, self.holder.stderr):
                if pipe:
                    pipe.close()
