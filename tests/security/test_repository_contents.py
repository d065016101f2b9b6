"""Hostile repository contents: nothing in a checkout is opened by following a symlink out of
it, contexts are made by minibinder's own tar writer with every file counted, and a Dockerfile
cannot make the daemon fetch from the host's network."""

from __future__ import annotations

import os
import resource


def linked_repository(git_server, build_config, name: str, link: str, to: str) -> None:
    """A repository with its own Dockerfile that copies the checkout, and a symlink `link`
    pointing out of it, at `to`."""
    base = build_config.base_images[build_config.default_python]
    repo = git_server.create(
        name, {"Dockerfile": f"FROM {base}\nCOPY --chown=1000:1000 . /home/jovyan/\n"}
    )
    os.symlink(to, repo.work / link)
    repo.commit({}, f"{link} leads out of the checkout")


def test_a_dockerignore_symlinked_to_dev_zero_is_never_read(builder, build_config, git_server):
    linked_repository(
        git_server, build_config, "hostile/dockerignore", ".dockerignore", "/dev/zero"
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image, _ = builder.built("gh/hostile/dockerignore/HEAD")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024  # the build did not read /dev/zero into memory
    assert builder.run(image, "test -e .dockerignore && echo present || echo absent") == "absent"


def test_symlinks_out_of_the_checkout_stay_links(builder, build_config, git_server):
    linked_repository(git_server, build_config, "hostile/symlinks", "shadow", "/etc/shadow")
    image, _ = builder.built("gh/hostile/symlinks/HEAD")
    assert builder.run(image, "readlink shadow") == "/etc/shadow"  # the link, not the host file


def test_add_from_a_url_is_refused(builder, build_config, git_server):
    base = build_config.base_images[build_config.default_python]
    git_server.create(
        "hostile/add-url",
        {"Dockerfile": f"FROM {base}\nADD http://127.0.0.1:8585/metrics /tmp/m\n"},
    )
    _, events = builder.build("gh/hostile/add-url/HEAD")
    assert events[-1].phase == "failed"
    assert "Dockerfile line 2: ADD from a URL is not allowed" in events[-1].message
