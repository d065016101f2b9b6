"""A lock made for a Python this server lacks (binder-examples/pipfile: Pipfile.lock for 3.6,
pandas 0.24 and scipy 1.3 from source) is installed from its unlocked file when the Python
fallback applies, with a notice; a lock without one is tried as it is."""

from __future__ import annotations

import json

from minibinder.builds.buildpacks import plan_build, read_repo_config
from minibinder.builds.environments.pythons import parse_request
from minibinder.builds.prepare import _fallback_python
from minibinder.settings_load import load_config

LOCK = {
    "_meta": {"requires": {"python_version": "3.6"}},
    "default": {"pandas": {"version": "==0.24.2"}, "scipy": {"version": "==1.3.0"}},
    "develop": {},
}
PIPFILE = '[packages]\nseaborn = "*"\nnumpy = "*"\n\n[requires]\npython_version = "3.6"\n'


def plan_for(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return plan_build(read_repo_config(tmp_path), load_config())


def test_the_pipfile_replaces_a_lock_for_a_missing_python(tmp_path):
    plan = plan_for(tmp_path, {"Pipfile.lock": json.dumps(LOCK), "Pipfile": PIPFILE})
    assert b"pandas==0.24.2" in plan.dependency_files["requirements.txt"]
    _fallback_python(plan, parse_request("3.6", "Pipfile.lock"), load_config())
    assert plan.python_version == "3.11"
    requirements = plan.dependency_files["requirements.txt"].decode()
    assert "pandas" not in requirements and {"numpy", "seaborn"} <= set(requirements.split())
    notice = next(n for n in plan.notices if n and "Pipfile.lock was made for Python 3.6" in n)
    assert "installing Pipfile's packages (numpy, seaborn) for Python 3.11 instead" in notice


def test_a_lock_alone_is_tried_as_it_is(tmp_path):
    plan = plan_for(tmp_path, {"Pipfile.lock": json.dumps(LOCK)})
    _fallback_python(plan, parse_request("3.6", "Pipfile.lock"), load_config())
    assert b"pandas==0.24.2" in plan.dependency_files["requirements.txt"]


def test_a_lock_for_a_python_the_server_has_stays(tmp_path):
    lock = {**LOCK, "_meta": {"requires": {"python_version": "3.11"}}}
    plan = plan_for(tmp_path, {"Pipfile.lock": json.dumps(lock), "Pipfile": PIPFILE})
    assert plan.python_request is None and plan.python_version == "3.11"
    assert b"pandas==0.24.2" in plan.dependency_files["requirements.txt"]
