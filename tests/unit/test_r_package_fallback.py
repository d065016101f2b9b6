"""R packages when the R package repository does not answer: what install.R asks for, Debian's
names for it, the decision r_package_fallback makes, and the steps and notice it leads to."""

from __future__ import annotations

import pytest

from minibinder.builds import prepare, prepare_r
from minibinder.builds.buildpacks import RepoConfig, plan_build, render_dockerfile
from minibinder.builds.environments.r_packages import (
    RPackages,
    choose_r_packages,
    debian_name,
    debian_packages_step,
    parse_install_r,
)
from minibinder.builds.environments.r_runtime import FROM_DEBIAN, RUNNER_SCRIPT
from minibinder.errors import BuildpackError, ConfigError
from minibinder.settings_load import load_config

from .test_r_environments import FakeDocker

CONFIG = load_config(overrides={"r_package_repository": "http://cran.test/{date}"})


@pytest.mark.parametrize(
    "text, names, unread",
    [
        ('install.packages("R6")', ["R6"], []),
        ("install.packages('R6')\n", ["R6"], []),
        ("install.packages(c(\"R6\", 'jsonlite'), dependencies = TRUE)", ["R6", "jsonlite"], []),
        ('install.packages(pkgs = c("a1", "data.table"))', ["a1", "data.table"], []),
        ('install.packages(repos = "https://x/", "httr")', ["httr"], []),
        ('utils::install.packages("httr")', ["httr"], []),
        (
            'install.packages (\n  c("tidyverse",\n    "rmarkdown")\n)',
            ["tidyverse", "rmarkdown"],
            [],
        ),
        ('# install.packages("commented")\ninstall.packages("x1")  # "#"', ["x1"], []),
        ('x <- "# not a comment"; install.packages("x1")', ["x1"], []),
        ('install.packages("x1"); install.packages(c("x1", "y1"))', ["x1", "y1"], []),
        ('install.packages(c("tools", "httr"))', ["httr"], []),  # base packages come with R
        ('install.packages("pkg.tar.gz", repos = NULL, type = "source")', [], []),
        ('my.install.packages("no"); remotes::install_github("a/b")', [], []),
        ("pk <- c('a1')\ninstall.packages(pk)", [], ["install.packages(pk)"]),
        ('install.packages(paste0("a", "b"))', [], ['install.packages(paste0("a", "b"))']),
        ('install.packages("no;name")', [], ['install.packages("no;name")']),
        ("", [], []),
    ],
)
def test_install_r_is_read_for_its_install_packages_calls(text, names, unread):
    found = parse_install_r(text, "binder/install.R")
    assert found == RPackages(("binder/install.R",), tuple(names), tuple(unread))


def test_an_unclosed_call_is_an_error_naming_the_file():
    with pytest.raises(BuildpackError, match=r"install\.R: an install\.packages\( call is not"):
        parse_install_r('install.packages(c("a", "b")', "install.R")


@pytest.mark.parametrize(
    "name, deb",
    [("R6", "r-cran-r6"), ("data.table", "r-cran-data.table"), ("RCurl", "r-cran-rcurl"),
     ("httr", "r-cran-httr"), ("R.utils", "r-cran-r.utils")],
)  # fmt: skip
def test_debian_names_are_r_cran_and_the_name_in_lower_case(name, deb):
    assert debian_name(name) == deb


ASKED = RPackages(("install.R",), ("R6", "tinypkg"), ())


def test_a_repository_that_answers_is_used():
    choice = choose_r_packages(ASKED, "http://cran/", "", "fail", "bookworm")
    assert not choice.from_debian and choice.notice == ""


def test_one_that_does_not_answer_gives_debians_with_a_notice_naming_them():
    choice = choose_r_packages(ASKED, "http://cran/", "refused", "debian", "bookworm")
    assert choice.from_debian
    assert choice.notice == (
        "install.R: the R package repository http://cran/ does not answer (refused); "
        'installing its R packages from Debian bookworm instead (r_package_fallback = "debian"; '
        "Debian's versions): R6 → r-cran-r6, tinypkg → r-cran-tinypkg"
    )


def test_fail_refuses_and_an_r_of_r_builds_cannot_use_debians_packages():
    with pytest.raises(BuildpackError, match=r'\(refused\); .* \(r_package_fallback = "fail"\)'):
        choose_r_packages(ASKED, "http://cran/", "refused", "fail", "bookworm")
    with pytest.raises(BuildpackError, match="built for Debian's R, not for the R of https://r/"):
        choose_r_packages(ASKED, "http://cran/", "refused", "debian", "bookworm", "https://r/")


def test_calls_not_read_are_said_in_the_notice():
    asked = RPackages(("install.R",), (), ("install.packages(pk)",))
    notice = choose_r_packages(asked, "http://cran/", "refused", "debian", "bookworm").notice
    assert notice.endswith(
        ": none; not read (they fail unless Debian's packages cover them): install.packages(pk)"
    )


def test_the_debian_step_checks_every_name_first_and_records_what_it_installed():
    step = debian_packages_step(RPackages(("install.R",), ("R6", "data.table")), "bookworm")
    assert "for pair in R6=r-cran-r6 data.table=r-cran-data.table; do" in step
    assert "Debian bookworm has no package for these R packages" in step
    check, install = step.index("exit 1"), step.index("apt-get install -y")
    assert check < install
    assert step.endswith(f"printf '%s\\n' R6 data.table > {FROM_DEBIAN}")
    assert debian_packages_step(RPackages(("install.R",), ()), "bookworm").endswith(
        f": > {FROM_DEBIAN}"
    )


def test_the_runner_answers_from_debians_packages_when_they_were_installed():
    assert f'file.exists("{FROM_DEBIAN}")' in RUNNER_SCRIPT
    assert 'assignInNamespace("install.packages"' in RUNNER_SCRIPT


def test_r_package_fallback_is_a_checked_setting():
    assert CONFIG.r_package_fallback == "debian"
    with pytest.raises(ConfigError, match="expected one of debian, fail"):
        load_config(overrides={"r_package_fallback": "cran"})


def repo(files):
    return RepoConfig("", {name: text.encode() for name, text in files.items()})


@pytest.fixture
def repository(monkeypatch):
    """The R package repository's answer, as the probe reports it ("" answers)."""
    asked: list[str] = []
    answer = {"problem": ""}

    def probe(url, config):
        asked.append(url)
        return answer["problem"]

    monkeypatch.setattr(prepare_r, "repository_problem", probe)
    answer["asked"] = asked  # type: ignore[assignment]
    return answer


def settled(files, config=CONFIG):
    plan = plan_build(repo(files), config)
    lines = [
        e.message for e in prepare.prepare_environment(plan, config, FakeDocker("bookworm"), None)
    ]
    return plan, lines


INSTALL_R = 'install.packages(c("R6", "jsonlite"))\n'
DESCRIPTION = "Package: mine\nImports: jsonlite, httr\n"


def test_a_repository_that_answers_changes_nothing(repository):
    plan, lines = settled({"install.R": INSTALL_R})
    assert repository["asked"] == ["http://cran.test/latest"]
    assert len(plan.system_steps) == 3 and not any("r-cran-r6" in s for s in plan.system_steps)
    assert len(lines) == 1


def test_install_r_and_description_packages_come_from_debian_before_they_run(repository):
    repository["problem"] = "[Errno 111] Connection refused"
    plan, lines = settled({"install.R": INSTALL_R, "DESCRIPTION": DESCRIPTION})
    assert lines[-1] == (
        "install.R and DESCRIPTION: the R package repository http://cran.test/latest does not "
        "answer ([Errno 111] Connection refused); installing its R packages from Debian bookworm "
        'instead (r_package_fallback = "debian"; Debian\'s versions): R6 → r-cran-r6, '
        "jsonlite → r-cran-jsonlite, httr → r-cran-httr\n"
    )
    text = render_dockerfile(plan)
    debian = text.index("--no-install-recommends r-cran-r6 r-cran-jsonlite r-cran-httr")
    assert text.index("r-base-core") < debian < text.index("deps/install.R")
    assert debian < text.index("deps/description-deps.R")


def test_fail_refuses_the_build(repository):
    repository["problem"] = "timed out"
    with pytest.raises(BuildpackError, match='r_package_fallback = "fail"'):
        settled({"install.R": INSTALL_R}, load_config(overrides={"r_package_fallback": "fail"}))


def test_nothing_asked_for_asks_the_repository_nothing(repository):
    settled({"install.R": "IRkernel::installspec()\n", "DESCRIPTION": "Package: mine\n"})
    assert repository["asked"] == []
