"""Disk: clones are capped by apparent size and by file count, however well the repository
compresses or however git lays the files out."""

from __future__ import annotations

import pytest

from minibinder.errors import FetchError
from minibinder.repos.fetch import FetchLimits, fetch_commit

SCHEMES = ["https", "git"]
LOOPBACK = ["127.0.0.1"]  # the test's own git server


def test_a_file_of_zeros_counts_by_its_apparent_size(tmp_path, git_server):
    # 64 MiB of zeros: a few KB over the wire, a sparse file on disk.
    zeros = git_server.create("hostile/zeros", {"zeros.bin": bytes(64 * 2**20)})
    with pytest.raises(FetchError, match="larger than 32 MiB .clone_max_size"):
        limits = FetchLimits(SCHEMES, 60, 32 * 2**20, internal_hosts=LOOPBACK)
        list(fetch_commit(zeros.url, zeros.head, tmp_path / "c", limits))


def test_many_empty_files_count(tmp_path, git_server):
    many = git_server.create("hostile/many", {f"d{i // 100}/f{i}": "" for i in range(3000)})
    with pytest.raises(FetchError, match="more than 2000 files and folders .clone_max_files"):
        limits = FetchLimits(SCHEMES, 60, 2**30, max_files=2000, internal_hosts=LOOPBACK)
        list(fetch_commit(many.url, many.head, tmp_path / "c", limits))
