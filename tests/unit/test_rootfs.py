"""Where the base image's root filesystem comes from (builds/rootfs.py), with a fake engine:
present, pulled, made with debootstrap, or a one-line error naming both ways."""

from __future__ import annotations

import pytest

from minibinder.builds import rootfs
from minibinder.errors import BuildError


class FakeEngine:
    def __init__(self, images=(), pull_error=""):
        self.images, self.pull_error, self.pulled = set(images), pull_error, []

    def image_labels(self, name):
        return {} if name in self.images else None

    def pull(self, name):
        self.pulled.append(name)
        if not self.pull_error:
            self.images.add(name)
        return self.pull_error


def found(engine, name, monkeypatch, debootstrap_why_not=""):
    monkeypatch.setattr(rootfs, "debootstrap_unavailable", lambda: debootstrap_why_not)
    made = []

    def fake_debootstrap(docker, suite, tag, mirror):
        made.append((suite, tag))
        docker.images.add(tag)
        yield from ()

    monkeypatch.setattr(rootfs, "debootstrap", fake_debootstrap)
    events = list(rootfs.ensure_rootfs(engine, name))
    return events[-1].data["imageName"], made


def test_an_image_the_engine_has_is_used(monkeypatch):
    engine = FakeEngine(images={"debian:bookworm-slim"})
    assert found(engine, "debian:bookworm-slim", monkeypatch) == ("debian:bookworm-slim", [])
    assert engine.pulled == []


def test_a_missing_image_is_pulled(monkeypatch):
    engine = FakeEngine()
    assert found(engine, "debian:bookworm-slim", monkeypatch) == ("debian:bookworm-slim", [])
    assert engine.pulled == ["debian:bookworm-slim"]


def test_without_a_registry_debootstrap_makes_the_same_release(monkeypatch):
    engine = FakeEngine(pull_error="lookup registry-1.docker.io: no such host")
    assert found(engine, "debian:trixie-slim", monkeypatch) == (
        "minibinder-rootfs:trixie",
        [("trixie", "minibinder-rootfs:trixie")],
    )


def test_a_local_rootfs_is_never_pulled(monkeypatch):
    engine = FakeEngine()
    assert (
        found(engine, "minibinder-rootfs:bookworm", monkeypatch)[0] == "minibinder-rootfs:bookworm"
    )
    assert engine.pulled == []


def test_one_made_earlier_is_taken(monkeypatch):
    engine = FakeEngine(images={"minibinder-rootfs:bookworm"}, pull_error="no route")
    assert found(engine, "debian:bookworm-slim", monkeypatch) == ("minibinder-rootfs:bookworm", [])


def test_neither_way_is_one_error_naming_both(monkeypatch):
    engine = FakeEngine(pull_error="no such host")
    with pytest.raises(BuildError) as error:
        found(engine, "debian:bookworm-slim", monkeypatch, debootstrap_why_not="it needs root")
    message = str(error.value)
    assert "pulling debian:bookworm-slim failed (no such host)" in message
    assert "it needs root" in message and "base_rootfs" in message
