"""R environments: runtime.txt's R, the version choice, DESCRIPTION, and where the R steps land in
the Dockerfile (R and its packages before the repository copy; Python stays)."""

from __future__ import annotations

import pytest

from minibinder.builds import prepare, prepare_r
from minibinder.builds.buildpacks import RepoConfig, plan_build, read_repo_config, render_dockerfile
from minibinder.builds.environments.r_runtime import (
    RRequest,
    choose_r,
    install_script,
    parse_description,
    parse_r_runtime,
    repository_url,
    site_profile_step,
)
from minibinder.errors import BuildpackError, ConfigError
from minibinder.settings_load import load_config

CONFIG = load_config(overrides={"r_package_repository": "http://cran.test/{date}"})


@pytest.fixture(autouse=True)
def repository_answers(monkeypatch):
    """The R package repository answers (test_r_package_fallback.py says what happens when
    it does not)."""
    monkeypatch.setattr(prepare_r, "repository_problem", lambda url, config: "")


def repo(files, folder=""):
    return RepoConfig(folder, {k: v.encode() for k, v in files.items()})


@pytest.mark.parametrize(
    "text, version, date",
    [
        ("r-4.1-2022-01-01", (4, 1), "2022-01-01"),
        ("r-4.1.3-2022-01-01", (4, 1), "2022-01-01"),
        ("r-2022-01-01", None, "2022-01-01"),
        ("r-4.2", (4, 2), None),
        (" r-4.2-2023-06-30\n", (4, 2), "2023-06-30"),
    ],
)
def test_runtime_txt_r(text, version, date):
    request = parse_r_runtime(text, "runtime.txt")
    assert (request.version, request.date) == (version, date)


@pytest.mark.parametrize("text", ["r-", "r-four", "r-4.1-2022-13-01", "r-4.1-22-01-01", "r-4"])
def test_runtime_txt_r_errors_say_the_form(text):
    with pytest.raises(BuildpackError, match="runtime.txt says .*(r-<version>-<YYYY-MM-DD>|date)"):
        parse_r_runtime(text, "runtime.txt")


def test_debian_r_when_it_matches_or_nothing_is_asked():
    assert choose_r(RRequest("install.R", ""), (4, 2), {}, "nearest").version == (4, 2)
    choice = choose_r(parse_r_runtime("r-4.2-2023-01-01", "runtime.txt"), (4, 2), {}, "fail")
    assert choice.version == (4, 2) and not choice.warning and not choice.from_builds


def test_an_other_version_follows_r_fallback():
    request = parse_r_runtime("r-4.1-2022-01-01", "runtime.txt")
    choice = choose_r(request, (4, 2), {}, "nearest")
    assert choice.version == (4, 2) and not choice.from_builds
    assert "asks for R 4.1" in choice.warning and 'r_fallback = "nearest"' in choice.warning
    with pytest.raises(BuildpackError, match=r'provides only 4.2 \(r_fallback = "fail"\)'):
        choose_r(request, (4, 2), {}, "fail")
    with pytest.raises(BuildpackError, match="asks for R 3.6, but this server provides only 4.2"):
        choose_r(parse_r_runtime("r-3.6-2020-01-01", "runtime.txt"), (4, 2), {}, "nearest")


def test_r_builds_give_the_exact_version_and_join_the_nearest_choice():
    builds = {"4.1": "https://r.example/r-4.1.3.deb", "4.4": "https://r.example/r-4.4.1.deb"}
    exact = choose_r(parse_r_runtime("r-4.1-2022-01-01", "runtime.txt"), (4, 2), builds, "fail")
    assert exact.version == (4, 1) and exact.from_builds.endswith("4.1.3.deb")
    near = choose_r(parse_r_runtime("r-4.3-2024-01-01", "runtime.txt"), (4, 2), builds, "nearest")
    assert near.version == (4, 4) and near.from_builds.endswith("4.4.1.deb") and near.warning


def test_description_dependencies():
    text = (
        "Package: mypkg\nVersion: 0.1\nDepends: R (>= 3.5),\n    tinypkg (>= 0.1), methods\n"
        "Imports: jsonlite,\n\ttinypkg\nLinkingTo: Rcpp\nSuggests: testthat\n"
    )
    assert parse_description(text, "DESCRIPTION") == ("mypkg", ["tinypkg", "jsonlite", "Rcpp"])
    assert install_script(["a", "b.c"]) == 'install.packages(c("a", "b.c"))\n'


@pytest.mark.parametrize(
    "text, message",
    [
        ("Title: x\n", "the Package field is missing"),
        ("Package: xy\nImports: bad;name\n", "'bad;name' is not a package name"),
        ("  continued\n", "a continuation with no field"),
        ("Package x\n", "expected `Field: value`"),
    ],
)
def test_description_errors(text, message):
    with pytest.raises(BuildpackError, match=message):
        parse_description(text, "DESCRIPTION")


def test_the_snapshot_date_fills_the_repository_url():
    template = "https://packagemanager.posit.co/cran/__linux__/{codename}/{date}"
    assert repository_url(template, "bookworm", "2022-01-01").endswith("bookworm/2022-01-01")
    assert repository_url(template, "trixie", None).endswith("trixie/latest")
    assert 'options(repos = c(CRAN = "http://x/")' in site_profile_step("http://x/")


def test_install_r_runs_before_the_repository_copy_and_python_stays():
    plan = plan_build(
        repo({"install.R": 'install.packages("x")', "requirements.txt": "six"}, "binder"), CONFIG
    )
    assert plan.buildpack == "r" and plan.r == RRequest("binder/install.R", "")
    assert plan.dependency_files["install.R"] == b'install.packages("x")'
    assert "withCallingHandlers" in plan.dependency_files["minibinder-install.R"].decode()
    assert plan.env["R_LIBS_USER"] == "/srv/rlibs"
    text = render_dockerfile(plan)
    order = [
        text.index(s)
        for s in ("requirements.txt", "deps/install.R", "COPY --chown=1000:1000 repo/")
    ]
    assert order == sorted(order)


def test_description_installs_its_dependencies_first_and_itself_after_the_copy():
    files = {"DESCRIPTION": "Package: mine\nImports: tinypkg\n"}
    plan = plan_build(repo(files), CONFIG)
    assert plan.dependency_files["description-deps.R"] == b'install.packages(c("tinypkg"))\n'
    text = render_dockerfile(plan)
    assert text.index("description-deps.R") < text.index("COPY --chown=1000:1000 repo/")
    assert text.index("R CMD INSTALL .") > text.index("COPY --chown=1000:1000 repo/")


def test_description_counts_only_at_the_root_without_a_binder_folder(tmp_path):
    (tmp_path / "binder").mkdir()
    (tmp_path / "DESCRIPTION").write_text("Package: mine\n")
    assert plan_build(read_repo_config(tmp_path), CONFIG).buildpack == "python"
    (tmp_path / "binder").rmdir()
    assert plan_build(read_repo_config(tmp_path), CONFIG).buildpack == "r"


def test_an_environment_file_beside_install_r_is_said_to_be_unused():
    plan = plan_build(repo({"install.R": "", "environment.yml": "dependencies: [numpy]"}), CONFIG)
    assert plan.conda is None
    assert any(
        "environment.yml is not used: install.R makes this an R environment" in n
        for n in plan.notices
    )


class FakeDocker:
    def __init__(self, codename):
        self.os_release = f'PRETTY_NAME="Debian"\nVERSION_CODENAME={codename}\n'.encode()

    def image_id(self, name):
        return f"sha256:{name}-{self.os_release.decode()}"

    def image_file(self, name, path):
        assert path == "/usr/lib/os-release"
        return self.os_release


def prepared(files, config=CONFIG, codename="bookworm"):
    plan = plan_build(repo(files), config)
    lines = [
        event.message
        for event in prepare.prepare_environment(plan, config, FakeDocker(codename), None)
    ]
    return plan, lines


def test_r_comes_from_the_base_images_debian_release_in_a_layer_of_its_own():
    plan, lines = prepared({"runtime.txt": "r-4.2-2023-06-01", "install.R": ""})
    layer, kernel, profile = plan.system_steps
    assert "r-base-core r-base-dev r-cran-irkernel" in layer
    assert "IRkernel::installspec" in kernel
    assert "http://cran.test/2023-06-01" in profile
    assert lines == [
        "R 4.2 (Debian bookworm's) for runtime.txt; R packages from http://cran.test/2023-06-01\n"
    ]
    text = render_dockerfile(plan)
    assert text.index("r-base-core") < text.index("COPY --chown=1000:1000 _minibinder/deps/")


def test_the_r_layer_is_the_same_text_for_every_r_repository():
    one, _ = prepared({"install.R": "a"})
    other, _ = prepared({"DESCRIPTION": "Package: bb\n", "apt.txt": "libxml2-dev"})
    assert one.system_steps[:2] == other.system_steps[:2]


def test_the_fallback_is_visible_in_the_build_log():
    _, lines = prepared({"runtime.txt": "r-4.1-2022-01-01"})
    assert lines[0].startswith("WARNING: runtime.txt asks for R 4.1")
    assert lines[1].startswith("R 4.2 (Debian bookworm's)")
    fail = load_config(overrides={"r_fallback": "fail"})
    with pytest.raises(BuildpackError, match='r_fallback = "fail"'):
        prepared({"runtime.txt": "r-4.1-2022-01-01"}, fail)


def test_an_r_build_installs_r_and_irkernel_from_the_operators_sources():
    config = load_config(
        overrides={
            "r_builds": {"4.1": "https://r.example/r-4.1.3_1_amd64.deb"},
            "r_package_repository": "http://cran.test/",
        }
    )
    plan, lines = prepared({"runtime.txt": "r-4.1-2022-01-01"}, config, codename="bookworm")
    layer, profile, kernel = plan.system_steps
    assert "https://r.example/r-4.1.3_1_amd64.deb" in layer and "r-base-core" not in layer
    assert 'install.packages("IRkernel", lib = .Library)' in kernel and "HOME=/root" in kernel
    assert lines == [
        "R 4.1 (from https://r.example/r-4.1.3_1_amd64.deb) for runtime.txt; "
        "R packages from http://cran.test/\n"
    ]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"r_package_repository": "ftp://x/"}, "r_package_repository: expected an http"),
        ({"r_package_repository": "http://x/ y"}, "r_package_repository: expected an http"),
        ({"r_builds": {"4": "https://x/r.deb"}}, 'keys are versions like "3.11"'),
        ({"r_builds": {"4.1": "file:///r.deb"}}, "is not an http"),
        ({"r_fallback": "newer"}, "expected one of nearest, fail"),
    ],
)
def test_r_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


def test_the_shown_dockerfile_has_the_r_steps_when_docker_answers(tmp_path):
    from minibinder.builds.images import generated_dockerfile

    (tmp_path / "install.R").write_text('install.packages("tinypkg")\n')
    assert "r-base-core" in generated_dockerfile(tmp_path, CONFIG, FakeDocker("bookworm"))
    without = generated_dockerfile(tmp_path, CONFIG)
    assert "r-base-core" not in without
    assert without.endswith(
        "# R's steps are left out: they depend on the base image, and Docker did not answer\n"
    )


class TwoReleases:
    """Base images of two Debian releases."""

    CODENAMES = {"b:311": "bookworm", "b:313": "trixie"}

    def image_id(self, name):
        return f"sha256:{name}" if name in self.CODENAMES else None

    def image_file(self, name, path):
        return f"VERSION_CODENAME={self.CODENAMES[name.removeprefix('sha256:')]}\n".encode()


TWO_BASES = load_config(
    overrides={
        "base_images": {"3.11": "b:311", "3.13": "b:313"},
        "r_package_repository": "http://cran.test/",
    }
)


def test_an_r_version_another_base_has_is_taken_exactly_from_it():
    plan = plan_build(repo({"runtime.txt": "r-4.5-2025-06-01", "install.R": ""}), TWO_BASES)
    lines = [e.message for e in prepare.prepare_environment(plan, TWO_BASES, TwoReleases(), None)]
    assert (plan.base_image, plan.python_version) == ("b:313", "3.13")
    assert lines == [
        "R 4.5 for runtime.txt comes with Debian trixie, so this image has its Python 3.13\n",
        "R 4.5 (Debian trixie's) for runtime.txt; R packages from http://cran.test/\n",
    ]


def test_a_pinned_python_keeps_its_base_and_r_follows_r_fallback():
    pyproject = '[project]\nname = "x"\nversion = "1"\nrequires-python = "==3.11.*"\n'
    files = {"runtime.txt": "r-4.5-2025-06-01", "pyproject.toml": pyproject}
    plan = plan_build(repo(files), TWO_BASES)
    lines = [e.message for e in prepare.prepare_environment(plan, TWO_BASES, TwoReleases(), None)]
    assert plan.base_image == "b:311"
    assert lines[0].startswith("WARNING: runtime.txt asks for R 4.5, which this server does not")
