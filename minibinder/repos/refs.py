"""Git refs: which names are valid, and resolving one to a full commit SHA (`git ls-remote`)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence

from ..errors import FetchError, ResolveError, SpecError
from .git import NEEDS_CREDENTIALS, GitFailed, run_git
from .remote import Remote, checked_connection, through_redirects

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_ref(ref: str) -> str:
    """Refuse refs git would reject or could read as an option (git check-ref-format rules)."""
    if not ref:
        raise SpecError("the ref is empty; name a branch, tag or commit (or HEAD)")
    if (
        ref.startswith(("-", "/", "."))
        or ref.endswith(("/", ".", ".lock"))
        or ".." in ref
        or "//" in ref
        or "@{" in ref
        or "/." in ref
        or _BAD_REF_CHARS.search(ref)
        or len(ref) > 255
    ):
        raise SpecError(f"{ref!r} is not a valid git ref")
    return ref


def pick_sha(ls_remote_output: str, ref: str) -> str | None:
    """Choose the commit `ref` names from `git ls-remote` output, as git itself would.

    Exact names first (HEAD, refs/...), then branches, then tags (peeled to their commit).
    """
    refs: dict[str, str] = {}
    for line in ls_remote_output.splitlines():
        sha, _, name = line.partition("\t")
        if SHA_RE.match(sha) and name:
            refs[name] = sha
    for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if candidate in refs:
            return refs[candidate]
    return None


def resolve_ref(
    repo_url: str,
    ref: str,
    allowed_schemes: Sequence[str],
    timeout: float,
    internal_hosts: Sequence[str] = (),
    credentials_file: str = "",
) -> str:
    """Return the full SHA `ref` of `repo_url` points to; a 40-hex ref is taken as is.

    The host must not resolve to an internal address unless listed in `internal_hosts`; a
    redirect is followed only where the same holds (remote.py).
    """
    if SHA_RE.match(ref):
        return ref
    patterns = (
        [ref]
        if ref == "HEAD" or ref.startswith("refs/")
        else [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"]
    )
    try:
        pinned = checked_connection(repo_url, internal_hosts)
    except FetchError as error:
        raise ResolveError(str(error)) from None
    what = f"looking up {repo_url}"
    deadline = time.monotonic() + timeout

    def ls_remote(remote: Remote) -> str:
        left = math.ceil(max(1.0, deadline - time.monotonic()))
        args = [*remote.options, "ls-remote", "--", remote.url, *patterns]
        return run_git(
            args,
            allowed_schemes,
            left,
            what=what,
            env=remote.env,
            credentials_file=credentials_file,
        )

    try:
        output = through_redirects(
            repo_url, pinned, allowed_schemes, internal_hosts, what, ls_remote, credentials_file
        )
    except GitFailed as error:
        if error.reason == NEEDS_CREDENTIALS:
            raise ResolveError(
                f"could not fetch {repo_url}: {NEEDS_CREDENTIALS} (or there is no repository "
                "there: check the owner and the repository's name)"
            ) from None
        if error.host_answered:  # GitHub asks a login of a repository that does not exist
            raise ResolveError(
                f"repository not found: {repo_url} (the host answered: {error.reason}); check "
                "the owner and the repository's name"
            ) from None
        raise ResolveError(f"could not reach {repo_url}: {error}") from None
    except FetchError as error:
        raise ResolveError(str(error)) from None
    sha = pick_sha(output, ref)
    if sha is None:
        hint = (
            " (a commit must be given as its full 40-character SHA)"
            if all(c in "0123456789abcdef" for c in ref)
            else " (did you mean HEAD?)"
        )
        raise ResolveError(f"no branch or tag named {ref!r} in {repo_url}{hint}")
    return sha


class RefCache:
    """Resolved refs, reused for `ttl` seconds (per process); the clock is injected for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def resolve(
        self,
        repo_url: str,
        ref: str,
        ttl: float,
        allowed_schemes: Sequence[str],
        timeout: float,
        internal_hosts: Sequence[str] = (),
        credentials_file: str = "",
    ) -> str:
        key = (repo_url, ref)
        with self._lock:
            entry = self._entries.get(key)
        if entry and self.clock() - entry[1] < ttl:
            return entry[0]
        sha = resolve_ref(repo_url, ref, allowed_schemes, timeout, internal_hosts, credentials_file)
        with self._lock:
            self._entries[key] = (sha, self.clock())
        return sha


# One per process: 40 students clicking one link cause one lookup per worker.
REF_CACHE = RefCache()
