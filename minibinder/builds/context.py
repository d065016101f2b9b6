"""Build contexts (tar files) made by minibinder's own writer from a checkout: nothing is opened
by following a symlink, special files are left out, and every file's size is counted against a
cap, so a repository can neither make a worker read `/dev/zero` nor feed Docker an endless
context."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import IO

from ..errors import BuildError
from .buildpacks import BuildPlan

FIXED_MTIME = 0  # dependency files are ours: a fixed time keeps their layers cacheable


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(content), mode, FIXED_MTIME
    tar.addfile(info, io.BytesIO(content))


def add_tree(
    tar: tarfile.TarFile,
    root: Path,
    prefix: str,
    *,
    max_bytes: int,
    owner: int = 0,
    executables: Collection[str] = (),
    leave_out: Collection[str] = (),
) -> int:
    """Add the tree at `root` under `prefix` ("" for the top); return the bytes added.

    Symlinks stay symlinks, never followed (files are opened with O_NOFOLLOW); sockets, pipes
    and devices are left out, as are top-level names in `leave_out`; files in `executables`
    (paths relative to `root`) are made executable. Past `max_bytes` of file content the build
    stops with a BuildError.
    """
    total = 0
    if prefix:
        info = tar.gettarinfo(root, prefix)
        info.uid = info.gid = owner
        info.uname = info.gname = ""
        info.mode = 0o755
        tar.addfile(info)
    for folder, dirs, files in os.walk(root):  # os.walk does not descend into symlinks
        relative_folder = os.path.relpath(folder, root)
        if relative_folder == ".":
            dirs[:] = [d for d in dirs if d not in leave_out]
            files = [f for f in files if f not in leave_out]
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(folder, name)
            relative = os.path.normpath(os.path.join(relative_folder, name))
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                continue
            info = tar.gettarinfo(path, f"{prefix}/{relative}" if prefix else relative)
            info.uid = info.gid = owner
            info.uname = info.gname = ""
            # Modes as a checkout with the usual umask has them, whatever this process's umask
            # (minibinder's is 077): 0755 for folders and executables, 0644 for the rest.
            executable = info.mode & 0o111 or relative in executables
            info.mode = 0o755 if info.isdir() or executable else 0o644
            if not info.isfile():
                tar.addfile(info)
                continue
            total += info.size
            if total > max_bytes:
                raise BuildError(
                    f"the build context is larger than {max_bytes // 2**20} MiB "
                    "(clone_max_size); minibinder stopped reading it"
                )
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as data:
                tar.addfile(info, data)
    return total


def make_context(
    repo_dir: Path,
    plan: BuildPlan,
    dockerfile: str,
    scratch: Path,
    max_bytes: int,
    include_git: bool = True,
) -> IO[bytes]:
    """Return an open, rewound tar file: Dockerfile, `_minibinder/deps/...`, and `repo/...`.

    postBuild and start are made executable, as repo2docker does.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    handle = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 - the caller closes it
    with tarfile.open(fileobj=handle, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        for name, content in sorted(plan.dependency_files.items()):
            _add_bytes(tar, f"_minibinder/deps/{name}", content)
        add_tree(
            tar,
            repo_dir,
            "repo",
            max_bytes=max_bytes,
            executables=set(plan.executables),
            leave_out=() if include_git else (".git",),
        )
    handle.seek(0)
    return handle


def make_repository_context(
    repo_dir: Path, scratch: Path, max_bytes: int, include_git: bool = True
) -> IO[bytes]:
    """The checkout itself as the context, for a repository's own Dockerfile.

    A `.dockerignore` that is not a plain file (a symlink, say) is left out: the daemon would
    open it.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    leave_out = [] if include_git else [".git"]
    ignore = repo_dir / ".dockerignore"
    if os.path.lexists(ignore) and not stat.S_ISREG(os.lstat(ignore).st_mode):
        leave_out.append(".dockerignore")
    handle = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 - the caller closes it
    with tarfile.open(fileobj=handle, mode="w") as tar:
        add_tree(tar, repo_dir, "", max_bytes=max_bytes, leave_out=leave_out)
    handle.seek(0)
    return handle


def make_prefix_context(
    prefix: Path, dockerfile: str, scratch: Path, max_bytes: int, tools: Path | None = None
) -> IO[bytes]:
    """A Dockerfile and an installed folder under `env/` (and `tools` under `tools/`), every
    file owned by jovyan."""
    handle = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 - the caller closes it
    with tarfile.open(fileobj=handle, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        add_tree(tar, prefix, "env", max_bytes=max_bytes, owner=1000)
        if tools is not None:
            add_tree(tar, tools, "tools", max_bytes=max_bytes, owner=1000)
    handle.seek(0)
    return handle
