"""The Dockerfile policy: the file read as the builders read it, every source decided after
expansion, images only from allowed_registries. Table-driven, hostile inputs included."""

import re

import pytest

from minibinder.builds.buildpacks.dockerfile_policy import (
    check_dockerfile_policy,
    parse_image_reference,
)
from minibinder.builds.buildpacks.dockerfile_reading import (
    UNKNOWN,
    Expanded,
    expand,
    read_dockerfile,
)
from minibinder.errors import BuildpackError, ConfigError
from minibinder.settings_load import load_config

LAB = ("docker.io", "registry.lab.example:5000")


def check(text, allowed=LAB, build_args=None):
    check_dockerfile_policy(text, "Dockerfile", allowed, build_args)


# -- reading: what each builder sees as instructions ---------------------------------------------


@pytest.mark.parametrize(
    "text, legacy, expected",
    [
        ("FROM a\nRUN b\n", False, [("from", 1), ("run", 2)]),
        ("from a\n\tadd  x y\n", False, [("from", 1), ("add", 2)]),
        # continuations, with comment and empty lines inside them
        ("FROM a\nRUN b \\\n  c\nADD d e\n", False, [("from", 1), ("run", 2), ("add", 4)]),
        ("FROM a\nRUN b \\\n\n# x \\\n  c\nADD d e\n", False,
         [("from", 1), ("run", 2), ("add", 6)]),
        # a comment line ending in \ continues nothing
        ("FROM a\n# c \\\nADD d e\n", False, [("from", 1), ("add", 3)]),
        # the escape directive: ` continues, \ is a plain character
        ("# escape=`\nFROM a\nADD `\n  d e\n", False, [("from", 2), ("add", 3)]),
        ("# escape=`\nFROM a\nRUN b \\\nADD d e\n", False, [("from", 2), ("run", 3), ("add", 4)]),
        # a directive after any other line is a comment
        ("FROM a\n# escape=`\nRUN b `\nADD d e\n", False, [("from", 1), ("run", 3), ("add", 4)]),
        # an escaped escape character: newer builders end the line, the classic one goes on
        ("FROM a\nRUN b \\\\\nADD d e\n", False, [("from", 1), ("run", 2), ("add", 3)]),
        ("FROM a\nRUN b \\\\\nADD d e\n", True, [("from", 1), ("run", 2)]),
        # heredocs: data for newer builders, instructions for the classic one
        ("FROM a\nRUN <<EOF\nADD d e\nEOF\nRUN c\n", False, [("from", 1), ("run", 2), ("run", 5)]),
        ("FROM a\nRUN <<EOF\nADD d e\nEOF\n", True,
         [("from", 1), ("run", 2), ("add", 3), ("eof", 4)]),
        ("FROM a\nCOPY <<-'X' /x\n\tADD d e\n\tX\n", False, [("from", 1), ("copy", 2)]),
        ("FROM a\nRUN <<A cat - <<\"B\"\n1\nA\n2\nB\nRUN c\n", False,
         [("from", 1), ("run", 2), ("run", 7)]),
        ("FROM a\nRUN [\"sh\", \"<<EOF\"]\nADD d e\nEOF\n", False,
         [("from", 1), ("run", 2), ("add", 3), ("eof", 4)]),  # exec form: no heredoc
        ("FROM a\nRUN cat<<EOF\nADD d e\n", False, [("from", 1), ("run", 2), ("add", 3)]),
        ("FROM a\nONBUILD RUN <<EOF\nADD d e\nEOF\n", False, [("from", 1), ("onbuild", 2)]),
        ("\ufeffFROM a\r\nRUN b \\\r\n c\r\n", False, [("from", 1), ("run", 2)]),
    ],
)  # fmt: skip
def test_instructions_as_the_builder_reads_them(text, legacy, expected):
    reading = read_dockerfile(text, legacy=legacy)
    assert [(i.keyword, i.line) for i in reading.instructions] == expected


def test_directives_and_joined_lines():
    reading = read_dockerfile(
        "# syntax = docker/dockerfile:1\n#escape=`\nFROM a\nRUN b `\n c\n", legacy=False
    )
    assert reading.directives == {"syntax": ("docker/dockerfile:1", 1), "escape": ("`", 2)}
    assert reading.escape == "`"
    assert reading.instructions[1].rest == "b  c"


# -- expansion -----------------------------------------------------------------------------------

ENV = {"A": "http://h/x", "E": "", "Q": UNKNOWN}


@pytest.mark.parametrize(
    "word, escape, expected",
    [
        ("$A", "\\", Expanded("http://h/x", True)),
        ("${A}/y", "\\", Expanded("http://h/x/y", True)),
        ("${N:-http://d}", "\\", Expanded("http://d", True)),
        ("${E:-dflt}", "\\", Expanded("dflt", True)),
        ("${E-dflt}", "\\", Expanded("", True)),
        ("${A:+alt}", "\\", Expanded("alt", True)),
        ("${N:+alt}", "\\", Expanded("", True)),
        ("${N:-${A}}", "\\", Expanded("http://h/x", True)),
        ("'$A'", "\\", Expanded("$A", True)),
        ('"$A"', "\\", Expanded("http://h/x", True)),
        ("\\$A", "\\", Expanded("$A", True)),
        ("`$A", "`", Expanded("$A", True)),
        ("h\\ttp", "\\", Expanded("http", True)),
        ("$N", "\\", Expanded("", True)),
        ("$", "\\", Expanded("$", True)),
        ("./$Q", "\\", Expanded("./", False)),
        ("${Q:-x}", "\\", Expanded("", False)),
        ("${A#http}", "\\", Expanded("", False)),
    ],
)
def test_expansion(word, escape, expected):
    assert expand(word, ENV.get, escape) == expected


# -- image references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference, registry, repository",
    [
        ("python", "docker.io", "library/python"),
        ("python:3.11-slim", "docker.io", "library/python"),
        ("minibinder-base:py3.11", "docker.io", "library/minibinder-base"),
        ("jupyter/base-notebook@sha256:" + "a" * 64, "docker.io", "jupyter/base-notebook"),
        ("docker.io/library/debian:bookworm", "docker.io", "library/debian"),
        ("index.docker.io/library/debian", "docker.io", "library/debian"),
        ("registry-1.docker.io/x/y", "docker.io", "x/y"),
        ("quay.io/jupyter/base-notebook", "quay.io", "jupyter/base-notebook"),
        ("registry.lab.example:5000/x", "registry.lab.example:5000", "x"),
        ("127.0.0.1:19999/x", "127.0.0.1:19999", "x"),
        ("localhost/x", "localhost", "x"),
        ("LocalHost/x", "localhost", "x"),
        ("[::1]:5000/x:1", "[::1]:5000", "x"),
        ("registry:5000/x", "registry:5000", "x"),
    ],
)
def test_image_references(reference, registry, repository):
    parsed = parse_image_reference(reference)
    assert (parsed.registry, parsed.repository) == (registry, repository)


@pytest.mark.parametrize(
    "reference", ["", "Python", "a//b", "x:", "x@sha256:12", "docker.io./x", "-x/y", "a b"]
)
def test_invalid_image_references(reference):
    with pytest.raises(ValueError):
        parse_image_reference(reference)


# -- the policy: refused -------------------------------------------------------------------------

U = "http://127.0.0.1:19999/secret"


@pytest.mark.parametrize(
    "dockerfile, message",
    [
        # frontends and RUN flags
        ("# syntax=example/frontend\nFROM x\n", "line 1: the '# syntax=' frontend example/fro"),
        ("#syntax = foo\nFROM x\n", "syntax"),
        ("# syntax=127.0.0.1:5000/docker/dockerfile:1\nFROM x\n", "syntax"),
        ("//syntax=example/frontend\nFROM x\n", "syntax"),
        ("#!/bin/sh\n# syntax=example/frontend\nFROM x\n", "line 2: the '# syntax="),
        ('{"syntax": "example/frontend"}\n', "syntax"),
        ("FROM x\nRUN --mount=type=cache,target=/root/.cache pip install x\n", "RUN --mount"),
        ("FROM x\nRUN --network=host curl x\n", "RUN --network"),
        ("FROM x\nRUN --security=insecure id\n", "RUN --security"),
        ("FROM x\nRUN echo a \\\n  && true\nrun   --mount=type=secret,id=x cat\n", "line 4"),
        ("RUN echo no from\n", "no FROM"),
        # ADD from URLs, however written
        ("FROM x\nADD http://127.0.0.1:8585/metrics /m\n", "line 2: ADD from a URL is not allowed"),
        ("FROM x\nadd --chown=1000 https://example.org/a.tgz /a\n", "line 2: ADD from a URL"),
        ('FROM x\nADD ["https://example.org/a", "/a"]\n', "ADD from a URL"),
        ("FROM x\nADD \\\n  git@github.com:o/r.git /r\n", "line 2: ADD from a URL"),
        ("FROM x\nADD local.txt HTTP://169.254.169.254/ /x\n", "ADD from a URL"),
        ("FROM x\nADD\thttp://h/a\t/a\n", "ADD from a URL"),
        ('FROM x\nADD "http://h/a" /a\n', "ADD from a URL"),
        ("FROM x\nADD h\\ttp://h/a /a\n", "ADD from a URL"),
        ("FROM x\nADD --chown 1000 http://h/a /a\n", "ADD from a URL"),
        ("FROM x\n# note \\\nADD http://h/a /a\n", "line 3: ADD from a URL"),
        ("FROM x\nRUN a \\\n\n  # c\n  b\nADD http://h/a /a\n", "line 6: ADD from a URL"),
        ("FROM x\nRUN echo \\\\\nADD http://h/a /a\n", "line 3: ADD from a URL"),
        ("# escape=`\nFROM x\nADD `\n  http://h/a /a\n", "line 3: ADD from a URL"),
        # ... or after expansion
        (f"FROM scratch\nARG U={U}\nADD ${{U}} /x\n",
         f"line 3: ADD from a URL is not allowed ({U})"),
        (f"FROM x\nARG U={U}\nADD $U /x\n", "line 3: ADD from a URL"),
        (f"FROM x\nENV U={U}\nADD $U /x\n", "line 3: ADD from a URL"),
        (f"FROM x\nENV U {U}\nADD $U /x\n", "line 3: ADD from a URL"),
        (f"FROM x\nADD ${{U:-{U}}} /x\n", "line 2: ADD from a URL"),
        ("FROM x\nENV P=http\nADD ${P}://h/a /x\n", "ADD from a URL"),
        (f"ARG U={U}\nFROM x\nARG U\nADD $U /x\n", "line 4: ADD from a URL"),
        (f"FROM scratch AS a\nENV U={U}\nFROM a\nADD $U /x\n", "line 4: ADD from a URL"),
        ("FROM x\nADD $SOURCE /x\n", "line 2: ADD $SOURCE: whether this is a URL depends"),
        ("FROM x\nARG S=./safe\nADD $S /x\n", "depends on a variable"),  # image ENV wins
        # ONBUILD
        (f"FROM x AS a\nONBUILD ADD {U} /x\nFROM a\n", "line 2 (ONBUILD): ADD from a URL"),
        ("FROM x AS a\nonbuild add $U /x\n", "line 2 (ONBUILD): ADD $U"),
        (f"FROM scratch AS a\nONBUILD ENV U={U}\nFROM a\nADD $U /x\n", "line 4: ADD from a URL"),
        ("FROM x\nONBUILD RUN --mount=type=ssh true\n", "RUN --mount"),
        # image references outside allowed_registries
        ("FROM 127.0.0.1:19999/x\n", "line 1: FROM 127.0.0.1:19999/x names the registry "
         "127.0.0.1:19999 (an IP address), which is not in allowed_registries"),
        ("FROM x\nCOPY --from=127.0.0.1:19999/x /a /b\n",
         "line 2: COPY --from 127.0.0.1:19999/x names the registry 127.0.0.1:19999"),
        ("FROM x\nCOPY --from 127.0.0.1:19999/x /a /b\n", "127.0.0.1:19999"),
        ("FROM localhost:5000/x\n", "localhost:5000 (a loopback or private name)"),
        ("FROM LOCALHOST/x\n", "the registry localhost"),
        ("FROM registry.internal/x\n", "(a loopback or private name)"),
        ("FROM printer.local:631/x\n", "(a loopback or private name)"),
        ("FROM [::1]:5000/x\n", "(an IP address)"),
        ("FROM quay.io/jupyter/base-notebook\n", "quay.io (a registry that is not listed)"),
        ("FROM registry.lab.example/x\n", "registry.lab.example (a"),  # the listed port only
        ("FROM --platform linux/amd64 127.0.0.1:5000/x\n", "127.0.0.1:5000"),
        ("ARG B=127.0.0.1:5000/x\nFROM $B\n", "line 2: FROM 127.0.0.1:5000/x"),
        ("ARG B=127.0.0.1:5000\nFROM ${B}/x\n", "line 2: FROM 127.0.0.1:5000/x"),
        ("ARG T\nFROM python:${T:-3.11}\nFROM ${X:-127.0.0.1:5000/x}\n", "line 3"),
        ("ARG B=127.0.0.1:5000/x\nFROM x\nCOPY --from=$B /a /b\n", "line 3: COPY --from=$B"),
        ("FROM python:${TAG}\n", "line 1: FROM python:${TAG} uses a variable"),
        ("FROM x\nCOPY --from=$X /a /b\n", "line 2: COPY --from=$X: Docker does not expand"),
        ("ARG B=builder\nFROM x AS builder\nFROM x\nCOPY --from=${B} /a /b\n", "not expand"),
        ("FROM Python\n", "is not an image reference"),
        # what the builders might read differently is refused, not guessed
        ("FROM x\nRUN cat <<EOF;\nADD http://h/a /a\nEOF;\n", "line 2: the heredoc"),
        ("FROM x\nRUN cat <<EOF 'x\nADD http://h/a /a\nEOF\n", "line 2: the heredoc"),
        ("FROM x\nRUN cat <<CMD\nADD http://h/a /a\nCMD\n", "line 3: ADD from a URL"),
        ("# escape=x\nFROM x\n", "line 1: the escape directive"),
    ],
)  # fmt: skip
def test_refused(dockerfile, message):
    with pytest.raises(BuildpackError, match=re.escape(message)):
        check(dockerfile)


def test_a_refusal_names_the_file_the_line_the_reference_and_the_setting():
    with pytest.raises(BuildpackError) as raised:
        check_dockerfile_policy("FROM x\nCOPY --from=10.0.0.5:5000/y /a /b\n", "binder/Dockerfile")
    message = str(raised.value)
    assert message.startswith("binder/Dockerfile line 2: COPY --from 10.0.0.5:5000/y")
    assert "allowed_registries" in message


def test_build_arguments_override_defaults():
    check("ARG BASE=python:3.11\nFROM $BASE\n")
    with pytest.raises(BuildpackError, match="FROM 127.0.0.1:5000/x"):
        check("ARG BASE=python:3.11\nFROM $BASE\n", build_args={"BASE": "127.0.0.1:5000/x"})
    with pytest.raises(BuildpackError, match="ADD from a URL"):
        check("FROM scratch\nARG S=./a\nADD $S /x\n", build_args={"S": "http://h/a"})
    with pytest.raises(BuildpackError, match="syntax"):
        check("FROM x\n", build_args={"BUILDKIT_SYNTAX": "example/frontend"})


def test_an_empty_list_allows_no_registry():
    with pytest.raises(BuildpackError, match=r"allowed_registries \(empty\)"):
        check("FROM python\n", allowed=())


# -- the policy: allowed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM python:3.11-slim\nRUN pip install x\n",
        "FROM minibinder-base:py3.11\nUSER root\nRUN echo x\nUSER 1000\nCOPY . /home/jovyan/\n",
        "FROM docker.io/library/debian:bookworm\n",
        "FROM index.docker.io/library/debian\n",
        "FROM registry.lab.example:5000/x\n",
        "FROM Registry.Lab.Example:5000/x\n",
        "FROM scratch\n",
        "FROM base\nRUN pip install x --network-timeout 5\nUSER 1000\nADD data.tar.gz /d\n"
        "COPY a.txt /a\nRUN curl -fsSL https://example.org/x -o x\n",
        # multi-stage builds: stage names and numbers are not registries
        "FROM python:3.11 AS builder\nRUN make\nFROM python:3.11-slim\nCOPY --from=builder /a /b\n"
        "COPY --from=0 /a /c\nFROM builder\nCOPY --from=BUILDER /a /d\n",
        "ARG TAG=3.11\nFROM python:${TAG}\nARG TAG\nRUN echo $TAG\n",
        "ARG TAG\nFROM python:${TAG:-3.11}\n",
        "FROM --platform=$BUILDPLATFORM python:3.11\n",
        # variables that cannot make a URL
        "FROM python\nARG F\nADD ./$F /x\nADD files/${F}.tar.gz $HOME/\n",
        "FROM scratch\nADD $UNSET /x\n",
        "FROM jupyter/base-notebook\nCOPY --chown=${NB_UID}:${NB_GID} . ${HOME}\n"
        "ADD --chown=${NB_UID} environment.yml ${HOME}/\nUSER ${NB_USER}\n",
        "FROM python\nENV D=/data\nADD $D/a.tgz /x\n",
        # heredoc contents are data, however instruction-like
        f"FROM python\nRUN <<EOF\nADD {U} /x\nFROM 127.0.0.1:19999/x\nEOF\nRUN true\n",
        f"FROM python\nCOPY <<-\"EOF\" /etc/x\n\tADD {U} /x\n\tEOF\n",
        "FROM python\nRUN python3 <<PY\nimport os\nRUN --mount=x\nPY\n",
        # ONBUILD that runs nothing remote; Docker's own frontend
        "FROM python AS a\nONBUILD COPY . /app\nONBUILD RUN pip install .\nFROM a\n",
        "# syntax=docker/dockerfile:1\nFROM python\n",
        "# syntax=docker.io/docker/dockerfile:1.7-labs\n# escape=`\nFROM python\nRUN a `\n  b\n",
        "# syntax=registry.lab.example:5000/docker/dockerfile:1\nFROM python\n",
        # lower case, tabs, comments
        "from\tpython\nrun\techo hi\n# ADD http://h/a /a\n",
    ],
)  # fmt: skip
def test_allowed(dockerfile):
    check(dockerfile)


# -- the setting ---------------------------------------------------------------------------------


def test_allowed_registries_setting():
    assert load_config().allowed_registries == ["docker.io"]
    listed = ["Registry.Lab.Example:5000", "[::1]:5000"]
    config = load_config(overrides={"allowed_registries": listed})
    assert config.allowed_registries == ["registry.lab.example:5000", "[::1]:5000"]
    config = load_config(environ={"MINIBINDER_ALLOWED_REGISTRIES": "docker.io, quay.io"})
    assert config.allowed_registries == ["docker.io", "quay.io"]


@pytest.mark.parametrize(
    "value", ["https://quay.io", "quay.io/x", "host:99999", "host:", "-host", "a b", ""]
)
def test_allowed_registries_rejects(value):
    with pytest.raises(ConfigError, match="allowed_registries: expected a registry host"):
        load_config(overrides={"allowed_registries": [value]})
