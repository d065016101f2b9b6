"""The build floor and image collection by watermarks, with fakes."""

import pytest

from minibinder.builds.disk import ImageInfo, check_build_space, collect_images, removal_order
from minibinder.errors import BuildError
from minibinder.settings_load import load_config

GIB = 2**30


def test_floor():
    config = load_config(overrides={"disk_free_floor": "5G"})
    check_build_space(config, free_bytes=6 * GIB)
    with pytest.raises(BuildError, match=r"Not enough disk space to build: 4\.0 GiB free.*5\.0"):
        check_build_space(config, free_bytes=4 * GIB)


def test_removal_order_least_recent_first_never_in_use():
    images = [
        ImageInfo("a", 1, 300.0, False),
        ImageInfo("b", 1, 100.0, True),
        ImageInfo("c", 1, 200.0, False),
    ]
    assert [image.name for image in removal_order(images)] == ["c", "a"]


class FakeDocker:
    def __init__(self):
        self.removed = []

    def containers(self, label):
        return [{"Image": "repo-b:1"}]

    def images(self, label):
        assert label == "minibinder.instance=me"  # only this installation's images
        return [
            {"Id": "sha256:a", "RepoTags": ["repo-a:1"], "Size": 10 * GIB, "Created": 1},
            {"Id": "sha256:b", "RepoTags": ["repo-b:1"], "Size": 10 * GIB, "Created": 2},
            {"Id": "sha256:c", "RepoTags": ["repo-c:1"], "Size": 10 * GIB, "Created": 3},
        ]

    def remove_image(self, name):
        self.removed.append(name)


class FakeStore:
    def __init__(self, last_used):
        self.last_used = dict(last_used)

    def image_last_used(self):
        return dict(self.last_used)

    def forget_image(self, name):
        self.last_used.pop(name, None)


def test_collect_until_below_the_low_watermark():
    config = load_config(overrides={"image_gc_high": 85, "image_gc_low": 75})
    store = FakeStore({"repo-a:1": 500.0, "repo-c:1": 50.0})
    docker = FakeDocker()
    used = {"bytes": 90 * GIB}

    def usage():
        return used["bytes"] - 10 * GIB * len(docker.removed), 100 * GIB

    assert collect_images(config, docker, store, "me", usage) == ["repo-c:1", "repo-a:1"]
    assert "repo-b:1" not in docker.removed  # a session uses it
    assert store.last_used == {}


def test_nothing_collected_below_the_high_watermark():
    docker = FakeDocker()
    assert (
        collect_images(load_config(), docker, FakeStore({}), "me", lambda: (80 * GIB, 100 * GIB))
        == []
    )
