"""The build context minibinder packs from a checkout: layout, modes, what is left out."""

import os
import tarfile

from minibinder.build.buildpacks import BuildPlan
from minibinder.build.context import make_context


def pack(repo, plan=None, include_git=True):
    plan = plan or BuildPlan(buildpack="python", python_version="3.11")
    with (
        make_context(
            repo, plan, "FROM x\n", repo.parent / "scratch", include_git=include_git
        ) as handle,
        tarfile.open(fileobj=handle) as tar,
    ):
        return {member.name: member for member in tar.getmembers()}, tar


def test_layout_dependencies_and_executables(tmp_path):
    repo = tmp_path / "repo"
    (repo / "binder").mkdir(parents=True)
    (repo / "binder" / "postBuild").write_text("#!/bin/sh\n")
    (repo / "a.ipynb").write_text("{}")
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").write_text("x")
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
