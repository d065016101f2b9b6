"""R environments for real: a CRAN-like repository the test builds and serves, install.R and
DESCRIPTION fixtures launched through `minibinder serve` with its egress rules in place, an R
kernel over the proxy's WebSocket, the launcher in a real browser, the layers a notebook-only
commit reuses, a package that does not exist, the version fallback, and Debian's packages when
the package repository does not answer."""

from __future__ import annotations

import json
import re
import socket

import pytest

from ..conftest import make_config
from ..support.cran_repository import CranRepository
from ..support.jupyter import api, execute
from ..support.sse import events
from .conftest import launch, log_text
from .test_environments import layers

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
HELLO = "library(tinypkg); hello()"


@pytest.fixture(scope="module")
def cran(tmp_path_factory):
    with CranRepository(tmp_path_factory.mktemp("cran")) as served:
        yield served


@pytest.fixture(scope="module")
def r_config(tmp_path_factory, git_server, cran):
    return make_config(tmp_path_factory.mktemp("r-data"), git_server, r_package_repository=cran.url)


@pytest.fixture
def r_serve(serve_with, cran):
    return serve_with(r_package_repository=cran.url)


def r_kernel(ready: dict) -> str:
    status, kernel = api(ready, "api/kernels", "POST", {"name": "ir"})
    assert status == 201, (status, kernel)
    return kernel["id"]


def test_install_r_gives_an_r_kernel_with_the_package(r_serve, cran, git_server):
    git_server.create(
        "r/install",
        {
            "binder/install.R": 'install.packages("tinypkg")\n',
            "binder/apt.txt": "libxml2-dev\n",
            "binder/runtime.txt": "r-4.2-2023-06-01\n",
            "analysis.ipynb": NOTEBOOK,
        },
    )
    ready = launch(r_serve, "gh/r/install/HEAD")
    status, specs = api(ready, "api/kernelspecs")
    assert status == 200 and "ir" in specs["kernelspecs"] and "python3" in specs["kernelspecs"]
    result = execute(ready, r_kernel(ready), HELLO, timeout=120)
    assert result["stdout"] == "hello from tinypkg\n", result
    # The snapshot date of runtime.txt chose the repository's path; apt.txt worked beside R.
    assert any(path.startswith("/2023-06-01/src/contrib/") for path in cran.requested)
    python = execute(
        ready,
        r_kernel(ready),
        "cat(system(\"dpkg -s libxml2-dev | head -2\", intern = TRUE), sep = '\\n')",
        timeout=60,
    )
    assert "Status: install ok installed" in python["stdout"], python


def test_description_installs_its_imports_and_itself(r_serve, git_server):
    git_server.create(
        "r/description",
        {
            "DESCRIPTION": "Package: twicepkg\nVersion: 0.1\nTitle: Twice\nDescription: Doubles.\n"
            "License: MIT\nImports: tinypkg\n",
            "NAMESPACE": "export(twice)\n",
            "R/twice.R": "twice <- function(x) 2 * x\n",
            "analysis.ipynb": NOTEBOOK,
        },
    )
    ready = launch(r_serve, "gh/r/description/HEAD")
    result = execute(
        ready, r_kernel(ready), f"{HELLO}; cat(twicepkg::twice(21), '\\n')", timeout=120
    )
    assert result["stdout"] == "hello from tinypkg\n42 \n", result


def test_a_notebook_only_commit_reuses_the_r_layers(builder, r_config, git_server):
    repo = git_server.create(
        "r/layers", {"install.R": 'install.packages("tinypkg")\n', "a.ipynb": NOTEBOOK}
    )
    image, events = builder.built("gh/r/layers/HEAD", config=r_config)
    assert "R 4.2 (Debian bookworm's) for install.R" in log_text(events)
    assert builder.run(image, "Rscript -e 'library(tinypkg); hello()'") == "hello from tinypkg"
    python = builder.run(image, "python -c 'import jupyterlab; print(jupyterlab.__version__)'")
    assert python.startswith("4.")  # the Jupyter server and its Python stay
    repo.commit({"b.ipynb": NOTEBOOK}, "a notebook")
    second, events = builder.built("gh/r/layers/HEAD", config=r_config)
    assert second != image
    before, after = layers(image), layers(second)
    # Only the repository's copy differs: R, its kernel, the profile and install.R are reused.
    assert after[:-1] == before[:-1] and after[-1] != before[-1]
    assert "trying URL" not in log_text(events)  # nothing downloaded again


def test_a_package_that_does_not_exist_fails_the_build(builder, r_config, git_server):
    git_server.create("r/missing", {"install.R": 'install.packages("nosuchpkg")\n'})
    target, events = builder.build("gh/r/missing/HEAD", config=r_config)
    assert events[-1].phase == "failed"
    said = log_text(events) + events[-1].message
    assert "an R package did not install: package ‘nosuchpkg’ is not available" in said, said


def test_another_r_version_follows_r_fallback(builder, r_config, git_server, tmp_path):
    git_server.create("r/old", {"runtime.txt": "r-4.1-2022-01-01", "install.R": ""})
    _, events = builder.built("gh/r/old/HEAD", config=r_config)
    log = log_text(events)
    assert (
        "WARNING: runtime.txt asks for R 4.1, which this server does not provide (it has "
        "4.2); using R 4.2 instead"
    ) in log
    strict = make_config(
        tmp_path / "strict",
        git_server,
        r_fallback="fail",
        r_package_repository=r_config.r_package_repository,
    )
    _, events = builder.build("gh/r/old/HEAD", config=strict)
    assert events[-1].phase == "failed"
    assert (
        'runtime.txt asks for R 4.1, but this server provides only 4.2 (r_fallback = "fail")'
        in events[-1].message
    )


def test_the_browser_launcher_offers_r(r_serve, git_server, tmp_path):
    from playwright.sync_api import expect

    from ..support.browser import chromium, run_cell

    git_server.create("r/browser", {"install.R": 'install.packages("tinypkg")\n'})
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{r_serve.url}/v2/gh/r/browser/HEAD?urlpath=lab")
        page.wait_for_url("**/user/*/lab*", timeout=600_000)
        label = page.locator(".jp-LauncherCard-label", has_text=re.compile("^R$"))
        card = page.locator(".jp-LauncherCard[data-category='Notebook']", has=label)
        expect(card).to_be_visible(timeout=90_000)
        card.click()
        expect(page.get_by_text(re.compile(r"^R \| Idle$"))).to_be_visible(timeout=90_000)
        cell = page.locator(".jp-Cell").first
        run_cell(
            page,
            cell,
            code=HELLO,
            check=lambda output: expect(output).to_contain_text(
                "hello from tinypkg", timeout=30_000
            ),
        )


def test_an_r_version_of_another_debian_release_comes_exactly_from_its_base(
    builder, r_config, git_server, tmp_path
):
    from .test_environments import BASE_IMAGES

    config = make_config(
        tmp_path / "two",
        git_server,
        base_images=BASE_IMAGES,
        r_package_repository=r_config.r_package_repository,
    )
    git_server.create(
        "r/new", {"runtime.txt": "r-4.5-2025-06-01", "install.R": 'install.packages("tinypkg")\n'}
    )
    image, events = builder.built("gh/r/new/HEAD", config=config)
    log = log_text(events)
    assert (
        "R 4.5 for runtime.txt comes with Debian trixie, so this image has its Python 3.13" in log
    )
    assert "WARNING: runtime.txt asks for R" not in log
    versions = builder.run(
        image, "R --version | head -1; python --version; Rscript -e 'library(tinypkg); hello()'"
    )
    assert versions.splitlines()[0].startswith("R version 4.5.")
    assert versions.splitlines()[1:] == [
        "Python 3.13." + versions.splitlines()[1].split(".")[-1],
        "hello from tinypkg",
    ]


def switched_off(cran) -> str:
    """The test repository's address with a port nothing listens on: a repository that does
    not answer (the connection is refused)."""
    with socket.socket() as unused:
        unused.bind((cran.host, 0))
        port = unused.getsockname()[1]
    return f"http://{cran.host}:{port}/{{date}}/"


def test_without_the_r_package_repository_packages_come_from_debian(
    builder, serve_with, cran, git_server, tmp_path
):
    offline = switched_off(cran)
    git_server.create(
        "r/offline-lacking", {"install.R": 'install.packages(c("R6", "jsonlite", "tinypkg"))\n'}
    )
    config = make_config(tmp_path / "offline", git_server, r_package_repository=offline)
    _, built = builder.build("gh/r/offline-lacking/HEAD", config=config)
    assert built[-1].phase == "failed"
    assert (
        "The R package repository does not answer, and Debian bookworm has no package for "
        'these R packages (r_package_fallback = "debian"): tinypkg (no r-cran-tinypkg)'
    ) in built[-1].message, built[-1].message

    git_server.create(
        "r/offline",
        {"install.R": 'install.packages(c("R6", "jsonlite"))\n', "analysis.ipynb": NOTEBOOK},
    )
    serve = serve_with(r_package_repository=offline)
    received = events(f"{serve.url}/build/gh/r/offline/HEAD")
    assert received[-1]["phase"] == "ready", received[-1]
    notices = [event["message"] for event in received if event.get("notice")]
    assert any(
        "install.R: the R package repository http://" in line
        and "does not answer" in line
        and 'r_package_fallback = "debian"' in line
        and "R6 → r-cran-r6, jsonlite → r-cran-jsonlite" in line
        for line in notices
    ), notices
    code = (
        "library(R6); library(jsonlite); "
        "cat(toJSON(list(a = 1)), R6Class('Box')$classname, "
        "dirname(find.package(c('R6', 'jsonlite'))), sep = '\\n')"
    )
    result = execute(received[-1], r_kernel(received[-1]), code, timeout=120)
    assert result["stdout"].splitlines() == [
        '{"a":[1]}',
        "Box",
        "/usr/lib/R/site-library",
        "/usr/lib/R/site-library",
    ], result
