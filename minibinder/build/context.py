"""Pack a checkout and a build plan into a Docker build context (a tar file)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from .buildpacks import BuildPlan

FIXED_MTIME = 0  # dependency files are ours: a fixed time keeps their layers cacheable


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(content), mode, FIXED_MTIME
    tar.addfile(info, io.BytesIO(content))


def make_context(
    repo_dir: Path, plan: BuildPlan, dockerfile: str, scratch: Path, include_git: bool = True
) -> IO[bytes]:
    """Return an open, rewound tar file: Dockerfile, `_minibinder/deps/...`, and `repo/...`.

    Symlinks stay symlinks (never followed); sockets and devices are left out; postBuild and
    start are made executable, as repo2docker does.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    handle = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 - the caller closes it
    executables = set(plan.executables)
    with tarfile.open(fileobj=handle, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        tar.add(repo_dir, "repo", recursive=False)
        for name, content in sorted(plan.dependency_files.items()):
            _add_bytes(tar, f"_minibinder/deps/{name}", content)
        for folder, dirs, files in os.walk(repo_dir):
            relative_folder = os.path.relpath(folder, repo_dir)
            if relative_folder == "." and not include_git and ".git" in dirs:
                dirs.remove(".git")
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(folder, name)
                relative = os.path.normpath(os.path.join(relative_folder, name))
                mode = os.lstat(path).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                    continue
                info = tar.gettarinfo(path, f"repo/{relative}")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if relative in executables and info.isfile():
                    info.mode |= 0o755
                if info.isfile():
                    with open(path, "rb") as data:
                        tar.addfile(info, data)
                else:
                    tar.addfile(info)
    handle.seek(0)
    return handle
