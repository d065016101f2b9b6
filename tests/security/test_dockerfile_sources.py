"""Issue 18, item 3: a repository's Dockerfile must not make the Docker daemon fetch from the
host's own network. The daemon pulls images and downloads ADD URLs itself, where the egress
rules do not apply; the shapes below reached a loopback listener before the policy read the file
as the builders do. Each is refused with a message naming the line (and, for images, the setting
to change); heredoc contents stay data. One test builds such repositories for real."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

import pytest

from minibinder.builds.buildpacks.dockerfile_policy import check_dockerfile_policy
from minibinder.errors import BuildpackError

SECRET = "http://127.0.0.1:PORT/secret"

# name: (Dockerfile with BASE and PORT to fill in, the line refused, what the message says)
SHAPES = {
    "arg-expanded-add": (
        f"FROM BASE\nARG U={SECRET}\nADD ${{U}} /tmp/x\nRUN cat /tmp/x\n", 3, "ADD from a URL"),
    "escape-backtick-continuation": (
        f"# escape=`\nFROM BASE\nRUN echo hidden `\n  && true\nADD `\n    {SECRET} /tmp/x\n",
        5, "ADD from a URL"),
    "onbuild-add-then-from-the-stage": (
        f"FROM BASE AS trigger\nONBUILD ADD {SECRET} /tmp/x\nFROM trigger\n", 2, "ADD from a URL"),
    "from-loopback-registry": (
        "FROM 127.0.0.1:PORT/x\n", 1, "names the registry 127.0.0.1:PORT (an IP address), "
        "which is not in allowed_registries"),
    "copy-from-loopback-registry": (
        "FROM BASE\nCOPY --from=127.0.0.1:PORT/x /etc/passwd /tmp/x\n", 2,
        "COPY --from 127.0.0.1:PORT/x names the registry 127.0.0.1:PORT"),
    # variants the builders' parsers suggest
    "lower-case": (f"from BASE\nadd {SECRET} /tmp/x\n", 2, "ADD from a URL"),
    "json-form": (f'FROM BASE\nADD ["{SECRET}", "/tmp/x"]\n', 2, "ADD from a URL"),
    "tabs": (f"FROM\tBASE\nADD\t{SECRET}\t/tmp/x\n", 2, "ADD from a URL"),
    "backslash-ending-a-comment": (
        f"FROM BASE\n# a comment line \\\nADD {SECRET} /tmp/x\n", 3, "ADD from a URL"),
    "comment-inside-a-continuation": (
        f"FROM BASE\nRUN true \\\n# \\\n\n  && true\nADD {SECRET} /tmp/x\n", 6, "ADD from a URL"),
    "env-expanded-add": (f"FROM BASE\nENV U={SECRET}\nADD $U /tmp/x\n", 3, "ADD from a URL"),
    "arg-default-in-expansion": (f"FROM BASE\nADD ${{U:-{SECRET}}} /tmp/x\n", 2, "ADD from a URL"),
    "global-arg-in-from": ("ARG R=127.0.0.1:PORT\nFROM ${R}/x\n", 2, "FROM 127.0.0.1:PORT/x"),
    "onbuild-env-then-add": (
        f"FROM scratch AS trigger\nONBUILD ENV U={SECRET}\nFROM trigger\nADD $U /tmp/x\n", 4,
        "ADD from a URL"),
    "localhost-name": ("FROM localhost:PORT/x\n", 1, "localhost:PORT (a loopback or private"),
    "escaped-escape-before-add": (f"FROM BASE\nRUN echo \\\\\nADD {SECRET} /tmp/x\n", 3,
                                  "ADD from a URL"),
    "heredoc-ending-in-an-instruction-name": (
        f"FROM BASE\nRUN cat <<CMD\nADD {SECRET} /tmp/x\nCMD\n", 3, "ADD from a URL"),
    "syntax-frontend": ("# syntax=127.0.0.1:PORT/frontend\nFROM BASE\n", 1, "'# syntax=' frontend"),
}  # fmt: skip

ALLOWED = {
    "heredoc-contents-look-like-instructions": (
        f"FROM BASE\nRUN <<EOF\nADD {SECRET} /tmp/x\nFROM 127.0.0.1:PORT/x\nEOF\n"
        f"COPY <<-'END' /etc/note\n\tONBUILD ADD {SECRET} /x\n\tEND\n"),
    "ordinary": "FROM python:3.11-slim\nRUN pip install six\n",
    "docker-hub-in-full": "FROM docker.io/library/debian:bookworm\n",
    "multi-stage": "FROM BASE AS builder\nRUN true\nFROM BASE\nCOPY --from=builder /a /b\n"
                   "COPY --from=0 /a /c\n",
    "listed-registry": "FROM registry.lab.example:5000/x\n",
}  # fmt: skip

LISTED = ["docker.io", "registry.lab.example:5000"]


def fill(text: str, base: str, port: int) -> str:
    return text.replace("BASE", base).replace("PORT", str(port))


@pytest.mark.parametrize("name", SHAPES)
def test_the_shapes_are_refused_naming_the_line(name):
    dockerfile, line, says = SHAPES[name]
    with pytest.raises(BuildpackError) as refused:
        check_dockerfile_policy(
            fill(dockerfile, "minibinder-base:py3.11", 19999), "Dockerfile", LISTED
        )
    assert str(refused.value).startswith(f"Dockerfile line {line}"), str(refused.value)
    assert says.replace("PORT", "19999") in str(refused.value)


@pytest.mark.parametrize("name", ALLOWED)
def test_ordinary_dockerfiles_and_heredoc_data_are_allowed(name):
    check_dockerfile_policy(
        fill(ALLOWED[name], "minibinder-base:py3.11", 19999), "Dockerfile", LISTED
    )


@pytest.fixture
def loopback_listener():
    """A listener of the test's own on loopback, answering a secret and counting who came."""
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[tuple[str, int]] = []

    def serve() -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:
                return
            connections.append(peer)
            with connection:
                connection.settimeout(2)
                try:
                    connection.recv(65536)
                    connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close() alone does not
    server.close()
    thread.join(timeout=5)


END_TO_END = ["arg-expanded-add", "escape-backtick-continuation",
              "onbuild-add-then-from-the-stage", "from-loopback-registry",
              "copy-from-loopback-registry"]  # fmt: skip


@pytest.mark.parametrize("name", END_TO_END)
def test_a_real_build_fails_before_the_daemon_reaches_the_host(
    name, builder, build_config, git_server, loopback_listener
):
    port, connections = loopback_listener
    base = build_config.base_images[build_config.default_python]
    dockerfile, line, says = SHAPES[name]
    git_server.create(f"hostile/sources-{name}", {"Dockerfile": fill(dockerfile, base, port)})
    _, events = builder.build(f"gh/hostile/sources-{name}/HEAD")
    built = "".join(event.message for event in events if event.phase == "building")
    assert events[-1].phase == "failed", built
    assert re.search(rf"Dockerfile line {line}\b", events[-1].message), events[-1].message
    assert says.replace("PORT", str(port)) in events[-1].message
    assert "secret" not in built
    assert connections == []  # the daemon never called the host's loopback
