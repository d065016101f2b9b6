"""Run git as a subprocess with a hardened environment, a timeout and no prompts."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence

from ..errors import FetchError
from ..git_credentials import credential_options

log = logging.getLogger(__name__)

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
    # git itself follows no redirect: its pin covers the first host only. minibinder follows
    # a repository's redirect by running git again, checked and pinned (see remote.py).
    "http.followRedirects=false",
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
    args: Sequence[str],
    allowed_schemes: Sequence[str],
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    credentials_file: str = "",
) -> subprocess.Popen:
    """Start git hardened; with `credentials_file`, it asks minibinder's credential helper."""
    return subprocess.Popen(
        ["git", *HARDENING, *credential_options(credentials_file), *args],
        cwd=cwd,
        env={**git_env(allowed_schemes), **(env or {})},
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
    env: Mapping[str, str] | None = None,
    credentials_file: str = "",
) -> str:
    """Run git and return its standard output; raise FetchError in minibinder's words."""
    process = start_git(args, allowed_schemes, cwd, env, credentials_file)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(process)
        raise FetchError(f"{what} timed out after {timeout:g} s") from None
    if process.returncode != 0:
        raise git_failure(what, err)
    return out


def kill(process: subprocess.Popen) -> None:
    """Kill git and the helpers it started (remote-https, index-pack) as one group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    process.communicate()


NEEDS_CREDENTIALS = "this repository needs credentials the server does not have"

# What git says, and what a user is told instead: never git's own output, which would turn
# launch links into a probe of the server's network (which ports answer, what they say).
_EXPLANATIONS = (
    (
        ("could not resolve host", "name or service not known", "unable to look up"),
        "its host name does not resolve",
    ),
    (
        (
            "connection refused",
            "failed to connect",
            "couldn't connect",
            "unable to connect",
            "connection reset",
            "no route to host",
            "network is unreachable",
        ),
        "nothing answers at that address",
    ),
    (("timed out", "timeout"), "the server did not answer in time"),
    (("ssl", "tls", "certificate", "gnutls"), "a secure connection could not be made"),
    (
        ("could not read username", "authentication", "403", "401", "terminal prompts disabled"),
        NEEDS_CREDENTIALS,
    ),
    (
        (
            "not found",
            "does not appear to be a git repository",
            "404",
            "repository not found",
            "not a valid repository",
            "no such repository",
        ),
        "there is no repository at that address",
    ),
    (
        (
            "remote did not send all necessary objects",
            "unadvertised object",
            "couldn't find remote ref",
        ),
        "the server does not have that commit",
    ),
)


# Reasons that mean the host answered, and the repository is not there (for this user).
HOST_ANSWERED = {NEEDS_CREDENTIALS, "there is no repository at that address"}


def explain(stderr: str) -> str:
    """git's error output as a short reason in minibinder's own words."""
    text = (stderr or "").lower()
    for needles, reason in _EXPLANATIONS:
        if any(needle in text for needle in needles):
            return reason
    return "git could not fetch it"


class GitFailed(FetchError):
    """git exited with an error; `reason` is what the user is told of it."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"{what} failed: {reason}")
        self.reason = reason

    @property
    def host_answered(self) -> bool:
        """The host answered, and has no such (public) repository: a mistyped name."""
        return self.reason in HOST_ANSWERED


def git_failure(what: str, stderr: str) -> GitFailed:
    log.info("%s failed; git said: %s", what, last_line(stderr))  # for the operator only
    return GitFailed(what, explain(stderr))


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    meaningful = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (meaningful or lines or ["(no message)"])[-1]
