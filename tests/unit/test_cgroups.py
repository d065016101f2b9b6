"""Reading a container's CPU time and memory from cgroup files, in each layout Docker uses."""

import pytest

from minibinder.cgroups import cgroup_usage

ID = "c0ffee"


def write(root, files):
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


@pytest.mark.parametrize(
    "files",
    [
        {f"system.slice/docker-{ID}.scope/cpu.stat": "usage_usec 2500000\nuser_usec 1\n",
         f"system.slice/docker-{ID}.scope/memory.current": "1048576\n"},
        {f"docker/{ID}/cpu.stat": "usage_usec 2500000\n", f"docker/{ID}/memory.current": "1048576"},
        {f"cpuacct/docker/{ID}/cpuacct.usage": "2500000000\n",
         f"memory/docker/{ID}/memory.usage_in_bytes": "1048576\n"},
        {f"cpuacct/libpod_parent/libpod-{ID}/cpuacct.usage": "2500000000\n",
         f"memory/libpod_parent/libpod-{ID}/memory.usage_in_bytes": "1048576\n"},
        {f"machine.slice/libpod-{ID}.scope/cpu.stat": "usage_usec 2500000\n",
         f"machine.slice/libpod-{ID}.scope/memory.current": "1048576\n"},
    ],
)  # fmt: skip
def test_layouts(tmp_path, files):
    write(tmp_path, files)
    assert cgroup_usage(ID, tmp_path) == (2.5, 1048576)


def test_nothing_there(tmp_path):
    assert cgroup_usage(ID, tmp_path) is None
