"""Fetch exactly one commit of a repository, shallowly, with a timeout and a size cap."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import FetchError, SpecError
from .git import GitFailed, git_failure, kill, run_git, start_git
from .refs import SHA_RE
from .remote import Remote, checked_connection, through_redirects
from .submodules import MAX_DEPTH, check_submodule_path, submodule_entries, submodule_url
from .urlpolicy import check_clone_url


@dataclass(frozen=True)
class FetchLimits:
    allowed_schemes: Sequence[str]
    timeout: float
    max_bytes: int
    submodules: bool = False
    max_files: int = 100_000
    internal_hosts: Sequence[str] = ()
    credentials_file: str = ""  # git_credentials: git asks minibinder's helper

    @classmethod
    def from_config(cls, config: Config) -> FetchLimits:
        return cls(
            config.allowed_clone_schemes,
            config.clone_timeout,
            config.clone_max_size,
            config.clone_submodules,
            config.clone_max_files,
            config.internal_hosts,
            config.git_credentials,
        )


def tree_usage(path: Path) -> tuple[int, int]:
    """(apparent bytes, entries) of a directory tree, symlinks not followed.

    Apparent sizes, not allocated blocks: git writes runs of zeros as sparse files, so a 700 MB
    file of zeros occupies almost nothing on disk, yet becomes 700 MB in an image.
    """
    total = entries = 0
    stack = [str(path)]
    while stack:
        try:
            found = list(os.scandir(stack.pop()))
        except OSError:
            continue
        entries += len(found)
        for entry in found:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total, entries


def check_usage(dest: Path, limits: FetchLimits) -> None:
    size, entries = tree_usage(dest)
    if size > limits.max_bytes:
        raise FetchError(
            f"the repository is larger than {limits.max_bytes // 2**20} MiB (clone_max_size)"
        )
    if entries > limits.max_files:
        raise FetchError(
            f"the repository holds more than {limits.max_files} files and folders (clone_max_files)"
        )


def _watch(
    args: list[str],
    dest: Path,
    limits: FetchLimits,
    deadline: float,
    what: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run git while watching the clock and the size of `dest`; kill it past any limit."""
    process = start_git(
        args,
        limits.allowed_schemes,
        cwd=str(dest),
        env=env,
        credentials_file=limits.credentials_file,
    )
    while True:
        try:
            out, err = process.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            kill(process)
            raise FetchError(f"{what} took longer than {limits.timeout:g} s (clone_timeout)")
        try:
            check_usage(dest, limits)
        except FetchError:
            kill(process)
            raise
    if process.returncode != 0 and check:
        raise git_failure(what, err)
    check_usage(dest, limits)
    return out


def commit_time(repo_dir: Path, allowed_schemes: Sequence[str]) -> int | None:
    """When the checked-out commit was committed (seconds since the epoch), or None."""
    try:
        out = run_git(
            ["log", "-1", "--format=%ct", "HEAD"],
            allowed_schemes,
            30,
            cwd=str(repo_dir),
            what="git log",
        )
    except FetchError:
        return None
    return int(out.strip()) if out.strip().isdigit() else None


def fetch_commit(
    url: str, sha: str, dest: Path, limits: FetchLimits, ref: str | None = None, depth: int = 0
) -> Iterator[str]:
    """Check out commit `sha` of `url` into the empty directory `dest`, yielding progress lines.

    Fetches by SHA (one commit, depth 1); servers that refuse unadvertised SHAs get the ref
    name instead, and the fetched commit must then be the one that was resolved.
    """
    if not SHA_RE.match(sha):
        raise FetchError(f"internal: {sha!r} is not a full commit SHA")
    pinned = checked_connection(url, limits.internal_hosts)
    deadline = time.monotonic() + limits.timeout
    dest.mkdir(parents=True, exist_ok=True)
    yield f"Fetching {url} at {sha[:12]}"
    _watch(["init", "--quiet", "."], dest, limits, deadline, "git init")
    what = f"fetching {url}"

    def fetch_through_redirects(wanted: str) -> None:
        def attempt(remote: Remote) -> str:
            args = [
                *remote.options,
                "fetch",
                "--quiet",
                "--depth=1",
                "--no-tags",
                "--no-recurse-submodules",
                "--",
                remote.url,
                wanted,
            ]
            return _watch(args, dest, limits, deadline, what, env=remote.env)

        through_redirects(
            url,
            pinned,
            limits.allowed_schemes,
            limits.internal_hosts,
            what,
            attempt,
            limits.credentials_file,
        )

    try:
        fetch_through_redirects(sha)
    except GitFailed:  # git's own failure; not a limit, not a redirect minibinder refused
        if ref is None or SHA_RE.match(ref):
            raise
        yield "The server does not serve commits by SHA; fetching the ref by name"
        fetch_through_redirects(ref)
        fetched = _watch(
            ["rev-parse", "FETCH_HEAD"], dest, limits, deadline, "git rev-parse"
        ).strip()
        if fetched != sha:
            raise FetchError(
                f"{ref} moved while launching (now {fetched[:12]}, expected {sha[:12]}); try again"
            ) from None
    _watch(
        ["-c", "advice.detachedHead=false", "checkout", "--quiet", "FETCH_HEAD"],
        dest,
        limits,
        deadline,
        "git checkout",
    )
    if limits.submodules:
        yield from _fetch_submodules(url, dest, limits, deadline, depth)
    if depth == 0:
        check_usage(dest, limits)  # the superproject and its submodules together
        yield f"Fetched {tree_usage(dest)[0] // 1024} KiB"


def _fetch_submodules(
    url: str, dest: Path, limits: FetchLimits, deadline: float, depth: int
) -> Iterator[str]:
    """Fetch the commit each submodule is pinned to, by minibinder's own checks: the URL
    through the clone URL policy and the host check, the path inside the checkout."""
    gitmodules = dest / ".gitmodules"
    if not gitmodules.is_file() or gitmodules.is_symlink():
        return
    listing = _watch(
        [
            "config",
            "--file",
            ".gitmodules",
            "--no-includes",
            "-z",
            "--get-regexp",
            r"^submodule\..*\.(path|url)$",
        ],
        dest,
        limits,
        deadline,
        "reading .gitmodules",
        check=False,
    )
    for name, path, sub_url in submodule_entries(listing):
        check_submodule_path(name, path)
        tree = _watch(
            ["ls-tree", "-z", "HEAD", "--", path],
            dest,
            limits,
            deadline,
            "reading the submodule's commit",
        )
        mode, kind, rest = (tree.split(" ", 2) + ["", ""])[:3]
        if mode != "160000" or kind != "commit":
            continue  # not a submodule in this commit: git would skip it too
        if depth + 1 > MAX_DEPTH:
            raise FetchError(f"submodule {name!r}: submodules nest deeper than {MAX_DEPTH}")
        try:
            checked = check_clone_url(submodule_url(url, sub_url), limits.allowed_schemes)
        except SpecError as error:
            raise FetchError(f"submodule {name!r}: {error}") from None
        yield f"Fetching submodule {name}"
        remaining = dataclasses.replace(limits, timeout=max(1.0, deadline - time.monotonic()))
        try:
            yield from fetch_commit(
                checked, rest.split("\t", 1)[0], dest / path, remaining, depth=depth + 1
            )
        except FetchError as error:
            raise FetchError(f"submodule {name!r}: {error}") from None
