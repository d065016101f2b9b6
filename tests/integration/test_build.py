"""Fixture repositories served from loopback, built for real, checked inside the image."""

from __future__ import annotations

import json
import re
import threading

import pytest

from minibinder.builds.images import target_for_source
from minibinder.repos.providers import parse_spec

from .conftest import log_text

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
SMALL_PACKAGE = "tabulate==0.9.0"


def common_checks(builder, image):
    """What every Binder image must offer: JupyterLab, the notebook UI, jovyan at REPO_DIR."""
    output = builder.run(
        image,
        "whoami; id -u; pwd; echo $REPO_DIR; jupyter lab --version; "
        "jupyter notebook --version; stat -c %U index.ipynb; "
        "echo $PATH",
    )
    lines = output.splitlines()
    assert lines[:4] == ["jovyan", "1000", "/home/jovyan", "/home/jovyan"]
    assert re.match(r"4\.\d+", lines[4]) and re.match(r"7\.\d+", lines[5])
    assert lines[6] == "jovyan"
    assert "/home/jovyan/.local/bin" in lines[7]
    # JupyterLab's terminals start login shells, which reset PATH on Debian.
    assert builder.run(image, "bash -lc 'command -v jupyter'") == "/srv/venv/bin/jupyter"


@pytest.fixture(scope="module")
def requirements_repo(git_server):
    return git_server.create(
        "fixtures/requirements", {"requirements.txt": SMALL_PACKAGE + "\n", "index.ipynb": NOTEBOOK}
    )


def test_requirements_txt(builder, requirements_repo):
    image, events = builder.built("gh/fixtures/requirements/HEAD")
    assert [e.phase for e in events][:2] == ["fetching", "fetching"]
    assert image.endswith(":" + requirements_repo.head)
    common_checks(builder, image)
    assert builder.run(image, "python -c 'import tabulate; print(tabulate.__version__)'") == "0.9.0"


def test_second_build_of_the_same_sha_is_a_cache_hit(builder, requirements_repo):
    builder.built("gh/fixtures/requirements/HEAD")
    image, events = builder.built("gh/fixtures/requirements/HEAD")
    assert [e.phase for e in events] == ["built"]
    assert events[0].data["cached"] is True


def test_notebook_only_commit_reinstalls_nothing(builder, requirements_repo):
    first, _ = builder.built("gh/fixtures/requirements/HEAD")
    requirements_repo.commit({"second.ipynb": NOTEBOOK}, "add a notebook")
    second, events = builder.built("gh/fixtures/requirements/HEAD")
    assert second != first
    log = log_text(events)
    install_step = re.search(
        r"Step \d+/\d+ : RUN uv pip install --python python -r .*?(?=Step \d+/\d+)", log, re.DOTALL
    ).group(0)
    assert "Using cache" in install_step and "Running in" not in install_step
    copy_step = re.search(
        r"Step \d+/\d+ : COPY --chown=1000:1000 repo/.*?(?=Step|\Z)", log, re.DOTALL
    ).group(0)
    assert "Using cache" not in copy_step
    assert builder.run(second, "ls second.ipynb") == "second.ipynb"


def test_same_requirements_in_another_repository_reuse_the_environment(builder, git_server):
    git_server.create(
        "fixtures/requirements-twin",
        {"requirements.txt": SMALL_PACKAGE + "\n", "other.ipynb": NOTEBOOK},
    )
    builder.built("gh/fixtures/requirements/HEAD")
    _, events = builder.built("gh/fixtures/requirements-twin/HEAD")
    install_step = re.search(
        r"Step \d+/\d+ : RUN uv pip install --python python -r .*?(?=Step \d+/\d+)",
        log_text(events),
        re.DOTALL,
    ).group(0)
    assert "Using cache" in install_step


def test_apt_txt_and_postbuild(builder, git_server):
    git_server.create(
        "fixtures/apt-postbuild",
        {
            "apt.txt": "# a small tool\njq\n",
            "postBuild": '#!/bin/bash\nset -e\necho "$(whoami)" > ~/.postbuild-ran\n',
            "index.ipynb": NOTEBOOK,
        },
    )  # postBuild committed without the executable bit on purpose
    image, _ = builder.built("gh/fixtures/apt-postbuild/HEAD")
    common_checks(builder, image)
    assert builder.run(image, "jq --version").startswith("jq-")
    assert (
        builder.run(image, "cat ~/.postbuild-ran; stat -c %U ~/.postbuild-ran") == "jovyan\njovyan"
    )


def test_setup_py(builder, git_server):
    git_server.create(
        "fixtures/setup-py",
        {
            "setup.py": "from setuptools import setup\n"
            "setup(name='mbdemo', version='0.1', py_modules=['mbdemo'])\n",
            "mbdemo.py": "ANSWER = 42\n",
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/fixtures/setup-py/HEAD")
    assert builder.run(image, "cd /tmp && python -c 'import mbdemo; print(mbdemo.ANSWER)'") == "42"


def test_pyproject_toml(builder, git_server):
    git_server.create(
        "fixtures/pyproject",
        {
            "pyproject.toml": "[project]\nname = 'mbproj'\nversion = '0.1'\n"
            f"dependencies = ['{SMALL_PACKAGE}']\n"
            "[build-system]\nrequires = ['setuptools>=61']\n"
            "build-backend = 'setuptools.build_meta'\n"
            "[tool.setuptools]\npy-modules = ['mbproj']\n",
            "mbproj.py": "NAME = 'mbproj'\n",
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/fixtures/pyproject/HEAD")
    assert (
        builder.run(image, "cd /tmp && python -c 'import mbproj, tabulate; print(mbproj.NAME)'")
        == "mbproj"
    )


def test_pipfile_lock_wins_over_requirements(builder, git_server):
    lock = {
        "_meta": {"requires": {"python_version": "3.11"}},
        "default": {"tabulate": {"version": "==0.9.0"}},
        "develop": {},
    }
    git_server.create(
        "fixtures/pipfile",
        {
            "Pipfile.lock": json.dumps(lock),
            "Pipfile": "[packages]\ntabulate = '*'\n",
            "requirements.txt": "this-requirement-must-be-ignored==0.0.1\n",
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/fixtures/pipfile/HEAD")
    assert builder.run(image, "python -c 'import tabulate; print(tabulate.__version__)'") == "0.9.0"


def test_binder_folder_takes_precedence(builder, git_server):
    git_server.create(
        "fixtures/binder-dir",
        {
            "binder/requirements.txt": SMALL_PACKAGE + "\n",
            "requirements.txt": "this-requirement-must-be-ignored==0.0.1\n",
            "setup.py": "raise SystemExit('root setup.py must be ignored')\n",
            "apt.txt": "this-apt-package-must-be-ignored\n",
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/fixtures/binder-dir/HEAD")
    assert builder.run(image, "python -c 'import tabulate; print(tabulate.__version__)'") == "0.9.0"


def test_start_script_wraps_the_command(builder, git_server):
    git_server.create(
        "fixtures/start",
        {
            ".binder/start": '#!/bin/bash\nexport MB_STARTED=yes\nexec "$@"\n',
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/fixtures/start/HEAD")
    output = builder.sdk.containers.run(
        image, ["bash", "-c", "echo $MB_STARTED"], remove=True, user="1000"
    )
    assert output.decode().strip() == "yes"


def test_no_configuration(builder, git_server):
    git_server.create("fixtures/bare", {"index.ipynb": NOTEBOOK, "data/table.csv": "a,b\n1,2\n"})
    image, events = builder.built("gh/fixtures/bare/HEAD")
    common_checks(builder, image)
    assert builder.run(image, "cat data/table.csv") == "a,b\n1,2"


def test_repository_dockerfile(builder, build_config, git_server):
    base = build_config.base_images[build_config.default_python]
    git_server.create(
        "fixtures/dockerfile",
        {
            "Dockerfile": f"FROM {base}\nUSER root\nRUN echo from-dockerfile > /etc/mb-marker\n"
            "USER 1000\nCOPY --chown=1000:1000 . /home/jovyan/\n",
            "index.ipynb": NOTEBOOK,
        },
    )
    image, _ = builder.built("gh/fixtures/dockerfile/HEAD")
    common_checks(builder, image)
    assert builder.run(image, "cat /etc/mb-marker") == "from-dockerfile"
    labels = builder.docker.image_labels(image)
    assert labels["minibinder.buildpack"] == "dockerfile"


def test_labels_name_repo_ref_spec_version_and_config(builder, requirements_repo, build_config):
    image, _ = builder.built("gh/fixtures/requirements/HEAD")
    labels = builder.docker.image_labels(image)
    sha = image.rsplit(":", 1)[1]
    assert labels["minibinder.repo"] == f"{build_config.github_url}/fixtures/requirements"
    assert labels["minibinder.ref"] == sha
    assert labels["minibinder.spec"] == "gh/fixtures/requirements/HEAD"
    assert labels["minibinder.version"]
    assert labels["minibinder.config-hash"] == build_config.build_hash()


def test_failed_build_names_the_step_and_leaves_no_image(builder, git_server):
    git_server.create(
        "fixtures/broken", {"requirements.txt": "this-package-does-not-exist-minibinder==1.0\n"}
    )
    target, events = builder.build("gh/fixtures/broken/HEAD")
    failure = events[-1]
    assert failure.phase == "failed"
    assert re.search(r"Build failed at step \d+/\d+ \(RUN uv pip install", failure.message)
    assert "last lines of the build log" in failure.message
    assert "this-package-does-not-exist-minibinder" in failure.message
    assert builder.docker.image_labels(target.image) is None


def test_concurrent_builds_of_one_commit_share_one_build(builder, git_server):
    git_server.create("fixtures/shared", {"index.ipynb": NOTEBOOK, "shared.txt": "once\n"})
    results = {}

    def run(name):
        results[name] = builder.build("gh/fixtures/shared/HEAD")[1]

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(events[-1].phase == "built" for events in results.values())
    followers = [
        events for events in results.values() if any("already running" in e.message for e in events)
    ]
    assert len(followers) == 1
    assert (
        sum(
            log_text(events).count("Successfully built")
            for events in results.values()
            if events not in followers
        )
        == 1
    )


def test_unresolvable_ref_fails_before_anything_is_built(builder, build_config):
    from minibinder.errors import ResolveError

    with pytest.raises(ResolveError, match="no branch or tag named 'nope'"):
        target_for_source(parse_spec("gh/fixtures/requirements/nope", build_config), build_config)


def test_build_timeout_stops_the_build(builder, build_config, git_server, tmp_path):
    from ..conftest import make_config

    git_server.create("fixtures/slow", {"postBuild": "#!/bin/bash\nsleep 120\n"})
    config = make_config(tmp_path / "data", git_server, build_timeout=5)
    target, events = builder.build("gh/fixtures/slow/HEAD", config=config)
    assert events[-1].phase == "failed"
    assert "stopped after 5 s (build_timeout)" in events[-1].message
    assert builder.docker.image_labels(target.image) is None
