"""The build context minibinder packs from a checkout: layout, modes, what is left out."""

import os
import tarfile

import pytest

from minibinder.builds.buildpacks import BuildPlan
from minibinder.builds.context import make_context, make_repository_context
from minibinder.errors import BuildError

MIB = 2**20


def pack(repo, plan=None, include_git=True):
    plan = plan or BuildPlan(buildpack="python", python_version="3.11")
    with (
        make_context(
            repo, plan, "FROM x\n", repo.parent / "scratch", MIB, include_git=include_git
        ) as handle,
        tarfile.open(fileobj=handle) as tar,
    ):
        return {member.name: member for member in tar.getmembers()}, tar


def repository_context(repo, scratch, include_git=True):
    with (
        make_repository_context(repo, scratch / "s", MIB, include_git) as handle,
        tarfile.open(fileobj=handle) as tar,
    ):
        return {member.name: member for member in tar.getmembers()}


def checkout(tmp_path, files):
    repo = tmp_path / "repo"
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    return repo


def test_layout_dependencies_and_executables(tmp_path):
    repo = checkout(
        tmp_path, {"binder/postBuild": "#!/bin/sh\n", "a.ipynb": "{}", ".git/HEAD": "x"}
    )
    os.symlink("a.ipynb", repo / "link.ipynb")
    plan = BuildPlan(
        buildpack="python",
        python_version="3.11",
        dependency_files={"requirements.txt": b"six\n"},
        executables=["binder/postBuild"],
    )
    members, _ = pack(repo, plan, include_git=False)
    assert set(members) == {
        "Dockerfile",
        "repo",
        "repo/binder",
        "repo/binder/postBuild",
        "repo/a.ipynb",
        "repo/link.ipynb",
        "_minibinder/deps/requirements.txt",
    }
    assert members["repo/binder/postBuild"].mode & 0o111 == 0o111
    assert members["repo/link.ipynb"].issym() and members["repo/link.ipynb"].linkname == "a.ipynb"
    assert members["repo/a.ipynb"].uid == 0 and members["repo/a.ipynb"].uname == ""
    assert members["_minibinder/deps/requirements.txt"].mtime == 0  # cacheable layer


def test_special_files_are_left_out(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("a")
    os.mkfifo(repo / "pipe")
    members, _ = pack(repo)
    assert "repo/pipe" not in members and "repo/a.txt" in members


def test_a_repositorys_own_dockerfile_context_is_the_checkout(tmp_path):
    repo = checkout(
        tmp_path, {"binder/Dockerfile": "FROM x\n", ".dockerignore": "*.tmp\n", ".git/HEAD": "x"}
    )
    members = repository_context(repo, tmp_path, include_git=False)
    assert sorted(members) == [".dockerignore", "binder", "binder/Dockerfile"]


def test_a_symlinked_dockerignore_is_never_opened(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM x\n")
    os.symlink("/dev/zero", repo / ".dockerignore")
    os.symlink("/etc/passwd", repo / "passwd")
    members = repository_context(repo, tmp_path)
    assert ".dockerignore" not in members
    assert members["passwd"].issym() and members["passwd"].size == 0  # a link, not the file


def test_every_file_counts_against_the_cap(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for index in range(3):
        (repo / f"f{index}").write_bytes(b"x" * (MIB // 2))
    with pytest.raises(BuildError, match="larger than 1 MiB"):
        make_repository_context(repo, tmp_path / "s", MIB)
