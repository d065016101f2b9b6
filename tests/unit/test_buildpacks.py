"""Detection and precedence of configuration files, as repo2docker does it, and rendering."""

import json
import os
from pathlib import Path

import pytest

from minibinder.builds.buildpacks import RepoConfig, pick_buildpack, plan_build, read_repo_config
from minibinder.builds.buildpacks.base import parse_apt_txt
from minibinder.builds.buildpacks.python import refers_to_repository
from minibinder.builds.buildpacks.render import render_dockerfile
from minibinder.errors import BuildpackError
from minibinder.settings_load import load_config

CONFIG = load_config()
PYPROJECT = b'[project]\nname = "x"\nversion = "1"\n[build-system]\nrequires = ["setuptools"]\n'


def repo(files, config_dir=""):
    return RepoConfig(
        config_dir, {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    )


@pytest.mark.parametrize(
    "files, expected",
    [
        ({}, "python"),
        ({"requirements.txt": "six"}, "python"),
        ({"setup.py": ""}, "python"),
        ({"pyproject.toml": PYPROJECT}, "python"),
        ({"Pipfile": "[packages]\nsix = '*'\n"}, "pipfile"),
        ({"Pipfile.lock": "{}"}, "pipfile"),
        ({"Pipfile": "", "requirements.txt": "six"}, "pipfile"),
        ({"Dockerfile": "FROM x", "requirements.txt": "six", "Pipfile": ""}, "dockerfile"),
        ({"environment.yml": "", "requirements.txt": "six"}, "conda"),
        ({"environment.yaml": "", "Pipfile": ""}, "conda"),
        ({"install.R": ""}, "r"),
        ({"DESCRIPTION": "Package: a.b"}, "r"),
        ({"install.R": "", "environment.yml": ""}, "r"),
        ({"runtime.txt": "r-4.2-2023-01-01", "requirements.txt": "six"}, "r"),
        ({"Dockerfile": "FROM x", "environment.yml": ""}, "dockerfile"),
        ({"apt.txt": "curl", "postBuild": "", "start": ""}, "python"),
    ],
)
def test_detection_order(files, expected):
    assert pick_buildpack(repo(files)).name == expected


def test_requirements_install_before_the_repository_is_copied():
    text = render_dockerfile(plan_build(repo({"requirements.txt": "six==1.16.0\n"}), CONFIG))
    install = text.index("uv pip install --python python -r /srv/minibinder/deps/requirements.txt")
    assert text.index("COPY --chown=1000:1000 _minibinder/deps/") < install
    assert install < text.index("COPY --chown=1000:1000 repo/ /home/jovyan/")


def test_requirements_naming_repository_files_install_after_the_copy():
    text = render_dockerfile(plan_build(repo({"requirements.txt": "-e .\n"}), CONFIG))
    assert text.index("COPY --chown=1000:1000 repo/") < text.index(
        "uv pip install --python python -r requirements.txt"
    )


@pytest.mark.parametrize(
    "text, local",
    [
        ("six\nnumpy>=1\n", False),
        ("-e .\n", True),
        (".\n", True),
        ("-r other.txt\n", True),
        ("pkg @ file:///x\n", True),
        ("--requirement=x.txt", True),
        ("six\n  -c constraints.txt", True),
        ("--index-url https://x/simple\nsix\n", False),
    ],
)
def test_refers_to_repository(text, local):
    assert refers_to_repository(text) is local


def test_setup_py_and_pyproject_install_the_repository():
    for files in ({"setup.py": ""}, {"pyproject.toml": PYPROJECT}):
        text = render_dockerfile(plan_build(repo(files), CONFIG))
        assert text.index("COPY --chown=1000:1000 repo/") < text.index(
            "uv pip install --python python ."
        )


def test_pyproject_without_project_table_is_not_a_package():
    plan = plan_build(repo({"pyproject.toml": "[tool.black]\nline-length = 100\n"}), CONFIG)
    assert plan.post_repo_steps == []


def test_invalid_pyproject_is_a_clear_error():
    with pytest.raises(BuildpackError, match="pyproject.toml is not valid TOML"):
        plan_build(repo({"pyproject.toml": "[project\n"}), CONFIG)


def test_pip_installer_setting():
    config = load_config(overrides={"installer": "pip"})
    text = render_dockerfile(plan_build(repo({"requirements.txt": "six"}), config))
    assert "python -m pip install --no-cache-dir -r" in text and "uv pip" not in text


def test_pipfile_lock_wins_over_pipfile_and_installs_dev_packages():
    lock = {
        "_meta": {"requires": {"python_version": "3.11"}},
        "default": {
            "six": {"version": "==1.16.0"},
            "attrs": {"version": "==23.1.0", "markers": "python_version >= '3.7'"},
            "local": {"path": ".", "editable": True},
        },
        "develop": {"tabulate": {"version": "==0.9.0", "extras": ["widechars"]}},
    }
    plan = plan_build(
        repo({"Pipfile.lock": json.dumps(lock), "Pipfile": "[packages]\nx='*'"}), CONFIG
    )
    requirements = plan.dependency_files["requirements.txt"].decode()
    assert requirements.splitlines() == [
        "attrs==23.1.0 ; python_version >= '3.7'",
        "six==1.16.0",
        "tabulate[widechars]==0.9.0",
    ]
    assert plan.post_repo_steps[0].startswith("uv pip install --python python -e .")


def test_pipfile_without_lock():
    plan = plan_build(
        repo(
            {
                "Pipfile": "[packages]\nsix = '*'\nnumpy = '>=1.20'\n"
                "[dev-packages]\npytest = {version = '==8.0'}\n"
            }
        ),
        CONFIG,
    )
    assert plan.dependency_files["requirements.txt"].decode().splitlines() == [
        "numpy>=1.20",
        "six",
        "pytest==8.0",
    ]


def test_a_python_version_no_base_image_has_is_settled_while_building():
    plan = plan_build(repo({"Pipfile": "[requires]\npython_version = '3.7'\n"}), CONFIG)
    assert plan.python_request is not None and plan.python_request.exact == (3, 7)
    assert plan.python_request.source == "Pipfile"
    assert plan.base_image == CONFIG.base_images["3.11"]  # until then


def test_pipfile_paths_are_relative_to_the_pipfile():
    pipfile = "[packages]\ndummy = {path = '..', editable = true}\nsub = {path = 'pkg'}\n"
    plan = plan_build(repo({"Pipfile": pipfile}, ".binder"), CONFIG)
    assert plan.post_repo_steps[0].startswith("uv pip install --python python -e . ")
    assert plan.post_repo_steps[1].startswith("uv pip install --python python .binder/pkg ")


def test_pipfile_paths_must_stay_in_the_repository():
    with pytest.raises(BuildpackError, match="leads out of the repository"):
        plan_build(repo({"Pipfile": "[packages]\nx = {path = '../..'}\n"}, "binder"), CONFIG)


@pytest.mark.parametrize(
    "runtime, version",
    [("python-3.11", "3.11"), ("python-3.11.4\n", "3.11"), ("python-3", "3.11"), ("", "3.11")],
)
def test_runtime_txt(runtime, version):
    assert plan_build(repo({"runtime.txt": runtime}), CONFIG).python_version == version


def test_runtime_txt_picks_the_base_image_for_the_version():
    config = load_config(overrides={"base_images": {"3.11": "b:311", "3.12": "b:312"}})
    plan = plan_build(repo({"runtime.txt": "python-3.12"}), config)
    assert plan.base_image == "b:312"
    assert render_dockerfile(plan).splitlines()[1] == "FROM b:312"


@pytest.mark.parametrize(
    "runtime, message",
    [("ruby-3", "this runtime is not supported yet; minibinder understands python-X.Y and r-")],
)
def test_runtime_txt_errors(runtime, message):
    with pytest.raises(BuildpackError, match=message):
        plan_build(repo({"runtime.txt": runtime}), CONFIG)


def test_environment_yml_is_read_and_runtime_txt_ignored():
    files = {"environment.yml": "dependencies: [numpy, 'python=3.10']", "runtime.txt": "python-3.7"}
    plan = plan_build(repo(files, "binder"), CONFIG)
    assert plan.buildpack == "conda" and plan.python_request is None
    assert plan.conda is not None and plan.conda.where == "binder/environment.yml"
    assert [spec.name for spec in plan.conda.specs] == ["numpy", "python"]


def test_both_environment_spellings_is_an_error():
    with pytest.raises(BuildpackError, match="environment.yml and environment.yaml both exist"):
        plan_build(repo({"environment.yml": "", "environment.yaml": ""}), CONFIG)


@pytest.mark.parametrize(
    "name, message",
    [
        ("Project.toml", "Project.toml \\(Julia\\) is not supported yet"),
        ("default.nix", "default.nix \\(Nix\\) is not supported yet"),
    ],
)
def test_unsupported_files_fail_naming_the_file(name, message):
    with pytest.raises(BuildpackError, match=message):
        plan_build(repo({name: "", "requirements.txt": "six"}), CONFIG)


def test_apt_txt_is_validated_and_rendered_as_root():
    assert parse_apt_txt("# tools\ncurl\n\nvim  # editor\ncurl\nlibc6-dev g++\n") == [
        "curl",
        "g++",
        "libc6-dev",
        "vim",
    ]
    text = render_dockerfile(plan_build(repo({"apt.txt": "curl\n"}), CONFIG))
    assert text.index("USER root") < text.index("apt-get install") < text.index("USER 1000:1000")


@pytest.mark.parametrize(
    "line", ["curl; rm -rf /", "Curl", "-y", "pkg=1.0", "$(id)", "a/b", "pkg`id`", "..", "_x"]
)
def test_apt_txt_hostile_lines(line):
    with pytest.raises(BuildpackError, match="apt.txt line 1"):
        parse_apt_txt(line + "\n")


def test_postbuild_and_start_from_the_binder_folder():
    plan = plan_build(
        repo({"postBuild": "#!/bin/sh\n", "start": '#!/bin/sh\nexec "$@"\n'}, "binder"), CONFIG
    )
    assert plan.executables == ["binder/postBuild", "binder/start"]
    text = render_dockerfile(plan)
    assert "RUN ./binder/postBuild" in text
    assert 'ENTRYPOINT ["/home/jovyan/binder/start"]' in text
    assert text.index("COPY --chown=1000:1000 repo/") < text.index("RUN ./binder/postBuild")


def test_index_url_is_set_for_pip_and_uv():
    config = load_config(overrides={"package_index_url": "https://mirror.example/simple"})
    text = render_dockerfile(plan_build(repo({}), config))
    assert 'ENV PIP_INDEX_URL="https://mirror.example/simple"' in text
    assert 'ENV UV_INDEX_URL="https://mirror.example/simple"' in text


def test_no_configuration_renders_plain_python():
    text = render_dockerfile(plan_build(repo({}), CONFIG))
    assert text.splitlines()[1] == "FROM minibinder-base:py3.11"
    assert "RUN" not in text


def test_dockerfile_can_be_disabled():
    config = load_config(overrides={"allow_dockerfile": False})
    with pytest.raises(BuildpackError, match="allow_dockerfile = false"):
        plan_build(repo({"Dockerfile": "FROM x\n"}), config)


# -- reading a checkout ------------------------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def test_binder_folder_hides_root_configuration(tmp_path):
    write(
        tmp_path,
        {
            "requirements.txt": "root",
            "setup.py": "",
            "binder/requirements.txt": "b",
            "binder/apt.txt": "curl",
        },
    )
    config = read_repo_config(tmp_path)
    assert config.config_dir == "binder"
    assert config.files == {"requirements.txt": b"b", "apt.txt": b"curl"}


def test_dot_binder_folder(tmp_path):
    write(tmp_path, {".binder/requirements.txt": "x", "requirements.txt": "root"})
    assert read_repo_config(tmp_path).path("requirements.txt") == ".binder/requirements.txt"


def test_both_binder_folders_is_an_error(tmp_path):
    write(tmp_path, {"binder/requirements.txt": "", ".binder/requirements.txt": ""})
    with pytest.raises(BuildpackError, match="both binder/ and .binder/"):
        read_repo_config(tmp_path)


def test_symlink_out_of_the_repository_is_not_followed(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "secret").write_text("root:x:0:0")
    os.symlink(tmp_path / "secret", tmp_path / "repo" / "requirements.txt")
    with pytest.raises(BuildpackError, match="symbolic link to outside the repository"):
        read_repo_config(tmp_path / "repo")


def test_symlinked_binder_folder_out_of_the_repository(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "repo" / "binder")
    with pytest.raises(BuildpackError, match="binder/ is a symbolic link"):
        read_repo_config(tmp_path / "repo")


def test_symlink_inside_the_repository_is_read(tmp_path):
    write(tmp_path, {"deps/reqs.txt": "six\n"})
    os.symlink("deps/reqs.txt", tmp_path / "requirements.txt")
    assert read_repo_config(tmp_path).files["requirements.txt"] == b"six\n"


def test_labels_render_as_one_instruction_with_quoting():
    text = render_dockerfile(
        plan_build(repo({}), CONFIG),
        {"minibinder.spec": '/home/a "b" $HOME', "minibinder.ref": "abc"},
    )
    assert text.rstrip().splitlines()[-1] == (
        'LABEL minibinder.spec="/home/a \\"b\\" \\$HOME" minibinder.ref="abc"'
    )
