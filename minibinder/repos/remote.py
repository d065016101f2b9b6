"""Where git connects: a repository URL's host checked and its addresses pinned, and an HTTP
redirect followed by minibinder, never by git, only to a URL that passes the same checks and
gets pinned the same way.

Why follow at all: a renamed or transferred GitHub or GitLab repository answers its old URL
with a redirect, and launch links and badges keep the old name for years. git would follow the
redirect itself, but its address pin names the first host only, and the host check ran before
git started; so git runs with `http.followRedirects=false`, and a redirect of its first request
(`…/info/refs?service=git-upload-pack`, the only one git would follow as well) is read from
git's curl trace and tried again as a launch link of its own.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

from ..errors import FetchError, SpecError
from ..git_credentials import current_credentials
from .git import GitFailed
from .urlpolicy import check_clone_host, check_clone_url

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3  # a rename, a transfer, http→https: more than that is a loop or a trick
DISCOVERY = "/info/refs?service=git-upload-pack"  # git's first request, below the repository

# Reasons (git.py's words) that mean "nothing could be reached there": after a redirect the
# user is told the same as for a redirect minibinder refused, so that a redirect cannot tell
# which of the server's own ports are open.
_UNREACHABLE = (
    "its host name does not resolve",
    "nothing answers at that address",
    "the server did not answer in time",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Remote:
    """A repository URL as git is to be given it: `options` pin its host's addresses, `env`
    makes git write the headers it receives where minibinder can read a redirect."""

    url: str
    options: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def checked_connection(url: str, internal_hosts: Sequence[str]) -> list[str]:
    """git options for a connection to `url`'s host: refused (FetchError) when the host is
    internal and not listed in `internal_hosts`, pinned to the checked addresses otherwise."""
    try:
        return pin_resolution(url, check_clone_host(url, internal_hosts))
    except SpecError as error:
        raise FetchError(str(error)) from None


def pin_resolution(url: str, addresses: Sequence[str]) -> list[str]:
    """Options that make git's HTTP(S) connections use the addresses minibinder checked, so a
    host name cannot resolve to something else a moment later (DNS rebinding)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not addresses or not parts.hostname:
        return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return ["-c", f"http.curloptResolve={parts.hostname}:{port}:{pinned}"]


def redirect_location(trace: str) -> str | None:
    """The Location of the first redirect in a curl trace git wrote (`GIT_TRACE_CURL`), None
    when no answer was a redirect. A proxy's `200 Connection established` may come first."""
    status = 0
    for line in trace.splitlines():
        _, marker, header = line.partition("<= Recv header: ")
        if not marker:
            continue
        header = header.strip()
        status_line = re.match(r"HTTP/[\d.]+ (\d{3})\b", header)
        if status_line:
            status = int(status_line.group(1))
        elif 300 <= status < 400 and header.lower().startswith("location:"):
            return header.split(":", 1)[1].strip()
    return None


def moved_repository(url: str, location: str) -> str | None:
    """The repository URL a redirect of git's first request to `location` names, as git
    would compute it: the location must end in that request's own path and query. None when
    it does not (a sign-in page, a redirect of something else)."""
    asked = url.rstrip("/") + DISCOVERY
    target = urljoin(asked, location)
    if not target.endswith(DISCOVERY) or "#" in target:
        return None
    return target.removesuffix(DISCOVERY)


def moved_out_of_reach(what: str, target: str) -> FetchError:
    """One message for a redirect refused by the host policy and for one that leads nowhere."""
    return FetchError(
        f"{what} failed: it redirects to {target}, which minibinder may not or cannot reach "
        "(it fetches from public hosts, and from hosts the operator lists in internal_hosts)"
    )


def through_redirects(
    url: str,
    options: Sequence[str],
    allowed_schemes: Sequence[str],
    internal_hosts: Sequence[str],
    what: str,
    attempt: Callable[[Remote], T],
    credentials_file: str = "",
) -> T:
    """`attempt(remote)` runs git against `remote`: first `url` with `options`, its
    `checked_connection`; when git failed on a redirect, the new URL passes the clone URL
    policy and the host check, and git runs again against it, pinned; at most MAX_REDIRECTS
    times. With `credentials_file`, a redirect from a repository it gives no credentials for
    to one it does (or back) is refused: whether a repository is private was decided for
    `url`, and git would hand the target's token to wherever the redirect came from."""
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        with tempfile.TemporaryDirectory(prefix="minibinder-git-") as folder:
            trace = Path(folder) / "curl-trace"
            env = {"GIT_TRACE_CURL": str(trace), "GIT_TRACE_CURL_NO_DATA": "1"}
            try:
                return attempt(Remote(current, tuple(options), env))
            except GitFailed as error:
                if hop and error.reason in _UNREACHABLE:
                    raise moved_out_of_reach(what, current) from None
                location = redirect_location(_read(trace))
                if location is None:
                    raise
        target = moved_repository(current, location)
        if target is None:
            log.info("%s: redirected to %s, not a repository", what, location)
            raise FetchError(f"{what} failed: it redirects to a page that is not a repository")
        if hop == MAX_REDIRECTS:
            raise FetchError(f"{what} failed: it redirects more than {MAX_REDIRECTS} times")
        try:
            check_clone_url(target, allowed_schemes)
            if credentials_file:
                credentials = current_credentials(credentials_file)
                if credentials.covers_url(target) != credentials.covers_url(url):
                    raise FetchError("the redirect crosses between a private and a public URL")
            options = checked_connection(target, internal_hosts)
        except (SpecError, FetchError) as error:
            log.info("%s: redirect to %s refused: %s", what, target, error)  # operator only
            raise moved_out_of_reach(what, target) from None
        log.info("%s: following a redirect to %s", what, target)
        current = target
    raise AssertionError("unreachable")  # the loop returns or raises


def _read(trace: Path) -> str:
    try:
        return trace.read_text(errors="replace")
    except OSError:
        return ""
