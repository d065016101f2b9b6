"""Environments for real: a conda channel served on loopback by the test, the PyPI fallback
with a data-science environment launched through `minibinder serve`, a second Python version
from a base image made with debootstrap, the version fallback, and Node.js in postBuild."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import urllib.request

import docker as docker_sdk
import pytest

from minibinder.firewall import chain_prefix, uninstall
from minibinder.identity import instance_id
from minibinder.networks import ensure_egress

from ..conftest import make_config
from ..support.conda_channel import CondaChannel
from ..support.jupyter import execute, start_kernel
from ..support.sse import events
from .conftest import launch, log_text

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
BASE_IMAGES = {"3.11": "minibinder-base:py3.11", "3.13": "minibinder-base:py3.13"}
TOOL = '#!/bin/sh\necho "tinytool $0"\n'


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conda-channel")
    with (
        CondaChannel(folder)
        .add("tinytool", "1.0", files={"bin/tinytool": TOOL, "share/tinytool/v": "1.0\n"})
        .add("tinytool", "2.0", files={"bin/tinytool": TOOL, "share/tinytool/v": "2.0\n"})
        .add("tinylib", "0.1", depends=["tinytool >=2"])
    ) as served:
        yield served


@pytest.fixture(scope="module")
def env_config(tmp_path_factory, git_server, docker):
    for image in BASE_IMAGES.values():
        if docker.image_labels(image) is None:
            pytest.fail(f"{image} is missing; `make test` builds it (test-base-images)")
    return make_config(
        tmp_path_factory.mktemp("env-data"),
        git_server,
        base_images=BASE_IMAGES,
        internal_hosts=["127.0.0.1"],
    )


def environment_yml(channel_url: str, *specs: str) -> str:
    return f"channels: [{channel_url}]\ndependencies: [{', '.join(specs)}]\n"


def layers(image: str) -> list[str]:
    client = docker_sdk.from_env()
    try:
        return client.images.get(image).attrs["RootFS"]["Layers"]
    finally:
        client.close()


def test_a_conda_environment_from_a_channel(builder, env_config, channel, git_server):
    repo = git_server.create(
        "env/conda-tools",
        {
            "binder/environment.yml": environment_yml(channel.url, "tinylib"),
            "index.ipynb": NOTEBOOK,
        },
    )
    image, events = builder.built("gh/env/conda-tools/HEAD", config=env_config)
    log = log_text(events)
    assert "Solving the conda environment from http://127.0.0.1:" in log
    assert "binder/environment.yml: conda environment from http://127.0.0.1:" in log
    assert "(2 packages, solved; its tools come first on PATH)" in log
    output = builder.run(
        image,
        "command -v tinytool; tinytool; cat /srv/conda/envs/notebook/share/tinytool/v; "
        "ls /srv/conda/envs/notebook/conda-meta/; bash -lc 'command -v tinytool'; "
        "command -v jupyter",
    )
    lines = output.splitlines()
    assert lines[0] == "/srv/conda/envs/notebook/bin/tinytool"
    assert lines[1] == "tinytool /srv/conda/envs/notebook/bin/tinytool"
    assert lines[2] == "2.0"  # the solver honoured tinylib's dependency
    assert "minibinder-lock.yml" in lines and "tinylib-0.1-0.json" in lines
    assert lines[-2] == "/srv/conda/envs/notebook/bin/tinytool"  # login shells too
    assert lines[-1] == "/srv/venv/bin/jupyter"  # no Python in it: the server stays

    # A commit that changes only a notebook reuses the environment: nothing solved, same layers.
    repo.commit({"second.ipynb": NOTEBOOK}, "a notebook")
    second, events = builder.built("gh/env/conda-tools/HEAD", config=env_config)
    assert second != image
    assert "(2 packages, image reused;" in log_text(events)
    assert "Solving" not in log_text(events)
    environment_layers = layers(image)[: len(layers(image)) - 1]
    assert layers(second)[: len(environment_layers)] == environment_layers
    # Environment images are this installation's: image collection may remove them.
    from minibinder.identity import instance_id

    environments = [
        found
        for found in builder.docker.images("minibinder.conda-env")
        if any(
            tag.startswith(f"{env_config.image_prefix}conda-env:")
            for tag in found.get("RepoTags") or []
        )
    ]
    assert environments and all(
        found["Labels"].get("minibinder.instance") == instance_id(env_config)
        for found in environments
    )


def test_a_repositorys_own_lock_is_installed_without_solving(
    builder, env_config, channel, git_server
):
    # A solve would pick tinytool 2.0; the lock says 1.0, and 1.0 it is.
    archive = channel.folder / "noarch" / "tinytool-1.0-0.tar.bz2"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    lock = f"@EXPLICIT\n{channel.url}/noarch/tinytool-1.0-0.tar.bz2#{digest}\n"
    git_server.create(
        "env/locked",
        {
            "binder/conda-linux-64.lock": lock,
            "binder/environment.yml": environment_yml(channel.url, "tinytool"),
        },
    )
    image, events = builder.built("gh/env/locked/HEAD", config=env_config)
    log = log_text(events)
    assert "binder/conda-linux-64.lock: conda environment from the repository's lock" in log
    assert "Solving" not in log
    assert builder.run(image, "cat /srv/conda/envs/notebook/share/tinytool/v") == "1.0"
    bad = lock.replace(digest, "0" * 64)
    git_server.create("env/badlock", {"conda-linux-64.lock": bad})
    _, events = builder.build("gh/env/badlock/HEAD", config=env_config)
    assert events[-1].phase == "failed" and "hash mismatch" in events[-1].message


def test_an_unsatisfiable_spec_fails_naming_it(builder, env_config, channel, git_server):
    git_server.create(
        "env/unsat", {"environment.yml": environment_yml(channel.url, "'tinylib >=9'")}
    )
    _, events = builder.build("gh/env/unsat/HEAD", config=env_config)
    assert events[-1].phase == "failed"
    assert "the conda environment cannot be solved" in events[-1].message
    assert "tinylib >=9" in events[-1].message


def test_a_channel_named_by_a_repository_must_be_allowed(builder, channel, git_server, tmp_path):
    # The same channel, named as "localhost", which internal_hosts does not list.
    url = channel.url.replace("127.0.0.1", "localhost")
    git_server.create("env/internal", {"environment.yml": environment_yml(url, "tinylib")})
    config = make_config(tmp_path / "data", git_server)
    _, events = builder.build("gh/env/internal/HEAD", config=config)
    assert events[-1].phase == "failed"
    assert "is not allowed" in events[-1].message and "internal_hosts" in events[-1].message


def test_the_channel_stopped_follows_conda_fallback(builder, env_config, git_server, tmp_path):
    stopped = CondaChannel(tmp_path / "gone").add("tabulate", "0.9.0").index().start()
    url = stopped.url
    stopped.stop()
    git_server.create("env/offline", {"environment.yml": environment_yml(url, "tabulate=0.9")})
    image, events = builder.built("gh/env/offline/HEAD", config=env_config)
    log = log_text(events)
    assert f"conda channel {url} unreachable" in log
    assert (
        'installing its packages from the Python package index instead (conda_fallback = "pypi")'
        in log
    )
    assert builder.run(image, "python -c 'import tabulate; print(tabulate.__version__)'") == "0.9.0"
    # mamba and conda exist, and say why they cannot install anything here.
    said = builder.run(image, "mamba install -y make 2>&1; echo rc=$?; conda list 2>&1; echo rc=$?")
    assert said.splitlines() == [
        "mamba: environment.yml was installed from the Python package index because no conda "
        'channel answered when this image was built (conda_fallback = "pypi"), so this image has '
        "no conda environment to install into; use pip install, or launch again when the channel "
        "answers",
        "rc=1",
        said.splitlines()[2],
        "rc=1",
    ], said
    assert said.splitlines()[2].startswith("conda: environment.yml was installed from the")

    fail = make_config(
        tmp_path / "fail",
        git_server,
        base_images=BASE_IMAGES,
        internal_hosts=["127.0.0.1"],
        conda_fallback="fail",
    )
    _, events = builder.build("gh/env/offline/HEAD", config=fail, no_cache=True)
    assert events[-1].phase == "failed"
    assert f"conda channel {url} unreachable" in events[-1].message
    assert 'conda_fallback = "fail"' in events[-1].message


def test_a_silent_mirror_is_named_by_the_build_and_doctor(builder, git_server, tmp_path):
    from ..support.serving import write_config
    from .test_cli import minibinder

    stopped = CondaChannel(tmp_path / "gone").add("tabulate", "0.9.0").index().start()
    mirror = stopped.url
    stopped.stop()
    git_server.create("env/mirrored", {"environment.yml": "dependencies: [tabulate=0.9]\n"})
    config = make_config(
        tmp_path / "data",
        git_server,
        base_images=BASE_IMAGES,
        conda_channels=[mirror],
        conda_fallback="fail",
    )
    _, built = builder.build("gh/env/mirrored/HEAD", config=config)
    assert built[-1].phase == "failed"
    assert f"conda channel {mirror} unreachable" in built[-1].message
    assert "(the mirror set in conda_channels)" in built[-1].message
    settings = write_config(
        tmp_path / "doctor.toml",
        tmp_path / "data",
        conda_channels=[mirror],
        internal_hosts=["127.0.0.1"],
    )
    doctor = minibinder("doctor", config_file=settings).stdout
    assert f"warn  conda channel: {mirror}/noarch/repodata.json, the mirror set in " in doctor
    assert "conda.anaconda.org" not in doctor


DATA_SCIENCE = """\
name: data-science
channels:
  - conda-forge
dependencies:
  - python=3.11
  - numpy
  - pandas
  - matplotlib-base
  - bokeh
  - dask
  - scipy
  - ipywidgets
  - voila
  - pip
  - pip:
    - jupyter-server-proxy
"""


def test_a_data_science_environment_launches_from_the_package_index(serve_with, git_server):
    git_server.create(
        "env/data-science", {"environment.yml": DATA_SCIENCE, "index.ipynb": NOTEBOOK}
    )
    serve = serve_with(launch_timeout=120)
    received = events(f"{serve.url}/build/gh/env/data-science/HEAD")
    ready = received[-1]
    assert ready["phase"] == "ready", ready
    # The launch page shows these lines above the log: which path ran, what was renamed.
    notices = [event["message"] for event in received if event.get("notice")]
    assert any(
        '(conda_fallback = "pypi")' in line and "matplotlib-base → matplotlib" in line
        for line in notices
    ), notices
    kernel = start_kernel(ready)
    result = execute(
        ready,
        kernel,
        (
            "import numpy, pandas, matplotlib, bokeh, dask, scipy, ipywidgets, voila\n"
            "import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-m', 'http.server', '9753'],"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print('imported', matplotlib.__version__)"
        ),
        timeout=120,
    )
    assert result["status"] == "ok", result
    assert result["stdout"].startswith("imported ")
    # jupyter-server-proxy, named in the pip: section, is loaded by the session's server.
    url = f"{ready['url']}proxy/9753/"
    request = urllib.request.Request(url, headers={"Authorization": f"token {ready['token']}"})
    for _ in range(50):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read().decode()
                break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("jupyter-server-proxy did not answer")
    assert "Directory listing" in body


def test_a_second_python_version_exactly(serve_with, env_config, git_server):
    git_server.create("env/py313", {"runtime.txt": "python-3.13\n", "requirements.txt": "six\n"})
    serve = serve_with(base_images=BASE_IMAGES)
    ready = launch(serve, "gh/env/py313/HEAD")
    result = execute(ready, start_kernel(ready), "import sys, six; print(sys.version_info[:2])")
    assert result["status"] == "ok" and result["stdout"].strip() == "(3, 13)", result


def test_a_missing_python_version_follows_python_fallback(
    builder, env_config, git_server, tmp_path
):
    git_server.create("env/py310", {"runtime.txt": "python-3.10\n"})
    image, events = builder.built("gh/env/py310/HEAD", config=env_config)
    log = log_text(events)
    assert "WARNING: runtime.txt asks for Python 3.10" in log
    assert 'using Python 3.11 instead (python_fallback = "newer")' in log
    assert builder.run(image, "python --version").startswith("Python 3.11.")
    fail = make_config(
        tmp_path / "fail", git_server, base_images=BASE_IMAGES, python_fallback="fail"
    )
    _, events = builder.build("gh/env/py310/HEAD", config=fail, no_cache=True)
    assert events[-1].phase == "failed"
    assert "asks for Python 3.10, but this server provides only 3.11, 3.13" in events[-1].message


def test_postbuild_has_node_and_npm(builder, env_config, git_server):
    git_server.create(
        "env/node",
        {
            "postBuild": "#!/bin/bash\nset -e\nnode --version\nnpm --version\n"
            "mkdir -p ~/js && cd ~/js && npm install --no-audit is-number@7.0.0\n"
        },
    )
    image, _ = builder.built("gh/env/node/HEAD", config=env_config)
    output = builder.run(
        image, "cd ~/js && node -e \"console.log(require('is-number')(5))\"; node --version"
    )
    assert output.splitlines()[0] == "true"


def test_hostile_environment_files_run_nothing(builder, env_config, git_server):
    git_server.create("env/hostile", {"environment.yml": "dependencies: ['--help']\n"})
    _, events = builder.build("gh/env/hostile/HEAD", config=env_config)
    assert events[-1].phase == "failed" and "command-line option" in events[-1].message


def test_r_from_a_conda_channel_gets_its_kernel_registered(
    builder, env_config, git_server, tmp_path
):
    # Hand-made stand-ins for conda-forge's r-base and r-irkernel: what matters here is that the
    # environment is solved with R's kernel added and that Jupyter finds the kernel it brings.
    argv = ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"]
    kernel = json.dumps({"argv": argv, "display_name": "R", "language": "R"})
    channel = (
        CondaChannel(tmp_path / "r-channel")
        .add("r-base", "4.4.1", files={"bin/R": "#!/bin/sh\necho 'R stand-in'\n"})
        .add(
            "r-irkernel",
            "1.3.2",
            depends=["r-base"],
            files={"share/jupyter/kernels/ir/kernel.json": kernel},
        )
    )
    with channel:
        git_server.create(
            "env/r-conda", {"environment.yml": environment_yml(channel.url, "r-base")}
        )
        image, events = builder.built("gh/env/r-conda/HEAD", config=env_config)
    assert "(2 packages, solved; its tools come first on PATH)" in log_text(events)
    listed = builder.run(image, "jupyter kernelspec list")
    assert "ir " in listed and "/srv/conda/envs/notebook/share/jupyter/kernels/ir" in listed
    assert builder.run(image, "command -v R") == "/srv/conda/envs/notebook/bin/R"


MAKE = '#!/bin/sh\necho "GNU Make 4.4 (a test package)"\n'


@pytest.fixture(scope="module")
def gateway_channel(tmp_path_factory):
    """The test channel where build steps and sessions reach it too: on the gateway of a Docker
    network of its own, as the CRAN-like repository is served (an operator's conda mirror)."""
    sdk = docker_sdk.from_env()
    network = sdk.networks.create(f"mbchannel-{secrets.token_hex(3)}", driver="bridge")
    try:
        network.reload()
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        channel = (
            CondaChannel(tmp_path_factory.mktemp("gateway-channel"))
            .add("tinytool", "1.0", files={"bin/tinytool": TOOL})
            .add("make", "4.4", files={"bin/make": MAKE})
            .index()
            .start(host=gateway)
        )
        yield channel
        channel.stop()
    finally:
        network.remove()
        sdk.close()


def test_mamba_in_postbuild_installs_into_the_environment(
    builder, docker, gateway_channel, git_server, tmp_path, measured
):
    channel = gateway_channel
    config = make_config(
        tmp_path / "data",
        git_server,
        conda_channels=[channel.url],
        internal_hosts=["127.0.0.1", channel.host],
    )
    git_server.create(
        "env/mamba",
        {
            "environment.yml": "dependencies: [tinytool]\n",
            "postBuild": "#!/bin/bash\nset -e\nmamba install -y make\nconda list\n",
        },
    )
    instance = instance_id(config)
    ensure_egress(config, docker, instance)  # as serve does: the mirror passes, the host not
    try:
        started = time.monotonic()
        image, events = builder.built("gh/env/mamba/HEAD", config=config, no_cache=True)
        seconds = time.monotonic() - started
    finally:
        uninstall(chain_prefix(instance))
    log = log_text(events)
    assert "mamba: fetching the conda solver (py-rattler==" in log, log
    assert f"mamba: solving with {channel.url}" in log
    assert "  + make 4.4-0" in log
    listed = [line.split() for line in log.splitlines() if line.startswith(("make ", "tinytool "))]
    assert [row[:2] for row in listed] == [["make", "4.4"], ["tinytool", "1.0"]], log
    output = builder.run(image, "command -v mamba conda make; make; conda --version")
    prefix = "/srv/conda/envs/notebook/bin"
    assert output.splitlines()[:4] == [
        f"{prefix}/mamba",
        f"{prefix}/conda",
        f"{prefix}/make",
        "GNU Make 4.4 (a test package)",
    ]
    assert output.splitlines()[4].startswith("conda (minibinder's, over py-rattler ")
    refused = builder.run(image, "conda create -n other python 2>&1; echo rc=$?")
    assert refused.splitlines() == [
        "conda: `conda create` is not supported here: minibinder's conda does install, update, "
        "remove, list and clean in the notebook environment (/srv/conda/envs/notebook); use pip "
        "for Python packages from PyPI",
        "rc=1",
    ]
    client = docker_sdk.from_env()
    try:
        history = client.images.get(image).history()
    finally:
        client.close()
    layer = sum(row["Size"] for row in history if "postBuild" in row["CreatedBy"]) / 2**20
    measured(
        f"environment.yml + `mamba install -y make` in postBuild: built in {seconds:.1f} s;"
        f" the postBuild layer (rattler fetched on first use) is {layer:.0f} MiB"
    )
