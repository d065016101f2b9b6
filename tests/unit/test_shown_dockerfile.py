"""`minibinder build --dockerfile` is honest about what happens outside the Dockerfile: a conda
environment is solved on the host into an image of its own, and the comment says which file,
channels and packages."""

from __future__ import annotations

from minibinder.builds.images import generated_dockerfile
from minibinder.settings_load import load_config


def test_a_conda_environment_is_named_with_its_packages(tmp_path):
    (tmp_path / "environment.yml").write_text(
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=1.26\n"
        "  - pip:\n    - tabulate==0.9.0\n"
    )
    shown = generated_dockerfile(tmp_path, load_config())
    head = shown.split("\nFROM ", 1)[0]
    assert "environment.yml: solved and installed by minibinder on the host" in head
    assert "# Channels: conda-forge" in head
    assert "# Packages: python=3.11, numpy>=1.26" in head
    assert "tabulate==0.9.0" in head


def test_a_plain_repository_gets_no_such_comment(tmp_path):
    (tmp_path / "requirements.txt").write_text("tabulate\n")
    assert "solved and installed" not in generated_dockerfile(tmp_path, load_config())
