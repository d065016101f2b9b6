"""Resolve a repository source's ref to a full commit SHA with `git ls-remote`."""

from __future__ import annotations

import threading
import time

from .errors import FetchError, ResolveError
from .gitproc import run_git
from .spec import SHA_RE, RepoSource


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


def resolve_ref(source: RepoSource, allowed_schemes: list[str], timeout: float) -> str:
    """Return the full SHA `source.ref` points to; a 40-hex ref is taken as is."""
    if SHA_RE.match(source.ref):
        return source.ref
    patterns = [source.ref] if source.ref == "HEAD" or source.ref.startswith("refs/") else [
        f"refs/heads/{source.ref}", f"refs/tags/{source.ref}", f"refs/tags/{source.ref}^{{}}"]
    try:
        output = run_git(["ls-remote", "--", source.repo_url, *patterns], allowed_schemes,
                         timeout, what=f"looking up {source.repo_url}")
    except FetchError as error:
        raise ResolveError(f"could not reach {source.repo_url}: {error}") from None
    sha = pick_sha(output, source.ref)
    if sha is None:
        hint = " (a commit must be given as its full 40-character SHA)" if all(
            c in "0123456789abcdef" for c in source.ref) else " (did you mean HEAD?)"
        raise ResolveError(f"no branch or tag named {source.ref!r} in {source.repo_url}{hint}")
    return sha


class RefCache:
    """Resolved refs, reused for `ttl` seconds (per process); the clock is injected for tests."""

    def __init__(self, ttl: float, clock=time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def resolve(self, source: RepoSource, allowed_schemes: list[str], timeout: float) -> str:
        key = (source.repo_url, source.ref)
        with self._lock:
            entry = self._entries.get(key)
        if entry and self.clock() - entry[1] < self.ttl:
            return entry[0]
        sha = resolve_ref(source, allowed_schemes, timeout)
        with self._lock:
            self._entries[key] = (sha, self.clock())
        return sha
