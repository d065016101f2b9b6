"""Run git as a subprocess with a hardened environment, a timeout and no prompts."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence

from ..errors import FetchError

# Options that keep git from running anything a repository or URL could bring along.
HARDENING = (
    "-c",
    "protocol.file.allow=never",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "submodule.recurse=false",
    "-c",
    "credential.helper=",
    "-c",
    "http.followRedirects=initial",
)


def git_env(allowed_schemes: Sequence[str]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ALLOW_PROTOCOL": ":".join(allowed_schemes),
        "LC_ALL": "C",
    }
    # Keep the host's TLS settings (extra CAs, proxies): an intercepting proxy needs them.
    for name in (
        "GIT_SSL_CAINFO",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def start_git(
    args: Sequence[str], allowed_schemes: Sequence[str], cwd: str | None = None
) -> subprocess.Popen:
    return subprocess.Popen(
        ["git", *HARDENING, *args],
        cwd=cwd,
        env=git_env(allowed_schemes),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_git(
    args: Sequence[str],
    allowed_schemes: Sequence[str],
    timeout: float,
    cwd: str | None = None,
    what: str = "git",
) -> str:
    """Run git and return its standard output; raise FetchError with git's own message."""
    process = start_git(args, allowed_schemes, cwd)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(process)
        raise FetchError(f"{what} timed out after {timeout:g} s") from None
    if process.returncode != 0:
        raise FetchError(f"{what} failed: {last_line(err)}")
    return out


def kill(process: subprocess.Popen) -> None:
    """Kill git and the helpers it started (remote-https, index-pack) as one group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    process.communicate()


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    meaningful = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (meaningful or lines or ["(no message)"])[-1]
