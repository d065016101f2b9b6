"""The git credential helper minibinder's git runs (`credential.helper`), given the
`git_credentials` file: git writes what it asks for (protocol, host, path) on standard input,
the helper answers a user name and token from the file, or nothing, and git then fails as for
any repository that asks for a login. It answers `get` only; `store` and `erase` change nothing.
It prints nothing else: its output goes to git, never to a log.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from ..errors import ConfigError
from ..git_credentials import read_credentials


def read_request(stream: TextIO) -> dict[str, str]:
    """git's `key=value` lines up to an empty line (git-credential(1))."""
    request: dict[str, str] = {}
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            break
        key, _, value = line.partition("=")
        request[key] = value
    return request


def answer(credentials_file: str, request: dict[str, str]) -> str:
    try:
        credentials = read_credentials(credentials_file)
    except ConfigError:
        return ""  # minibinder checked the file at start-up; a broken one now gives nothing
    entry = credentials.lookup(
        request.get("protocol", ""), request.get("host", ""), request.get("path", "")
    )
    if entry is None:
        return ""
    return f"username={entry.username}\npassword={entry.token}\n"


def main(argv: Sequence[str], stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    if len(argv) != 2:
        return 1
    credentials_file, action = argv
    request = read_request(stdin)
    if action == "get":
        stdout.write(answer(credentials_file, request))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
