"""The hostile-input corpus (tests/security/corpus.py) against the pure parsers: every spec and
launch landing refused with a SpecError, before any process starts (the unit tier's guard
fails a test that starts one). The same corpus against a running service is in
tests/security/test_corpus.py."""

from __future__ import annotations

import pytest

from minibinder.errors import SpecError
from minibinder.repos.providers import parse_spec
from minibinder.settings_load import load_config
from minibinder.web.links import session_path
from tests.security import corpus

CONFIG = load_config(overrides={"allowed_clone_schemes": ["https", "git"]})


def test_the_corpus_is_large():
    total = (
        len(corpus.hostile_specs())
        + len(corpus.hostile_landings())
        + len(corpus.hostile_paths())
        + len(corpus.hostile_headers())
    )
    assert total >= 500, total


@pytest.mark.parametrize("spec", corpus.hostile_specs())
def test_hostile_specs_are_refused_before_git(spec):
    with pytest.raises(SpecError):
        parse_spec(spec, CONFIG)


@pytest.mark.parametrize("landing", corpus.hostile_landings(), ids=str)
def test_hostile_landings_are_refused(landing):
    with pytest.raises(SpecError):
        session_path(**landing)
