"""A real git server on 127.0.0.1 (`git daemon`) and fixture repositories committed into it."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Fixture",
    "GIT_AUTHOR_EMAIL": "fixture@example.org",
    "GIT_COMMITTER_NAME": "Fixture",
    "GIT_COMMITTER_EMAIL": "fixture@example.org",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**GIT_ENV, **(env or {})},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class GitServer:
    """Serves bare repositories under `root` at git://127.0.0.1:<port>/<owner>/<name>."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def start(self) -> GitServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--export-all",
                f"--base-path={self.root}",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                "--informative-errors",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)

    def create(self, path: str, files: dict[str, str | bytes], executable: tuple = ()) -> Repo:
        """A new repository `owner/name` whose first commit on `main` holds `files`."""
        bare = self.root / path
        bare.mkdir(parents=True)
        git("init", "--quiet", "--bare", "--initial-branch=main", ".", cwd=bare)
        repo = Repo(self, path, bare.parent / f".{bare.name}-work")
        repo.work.mkdir()
        git("init", "--quiet", "--initial-branch=main", ".", cwd=repo.work)
        repo.commit(files, "initial commit", executable)
        return repo


class Repo:
    def __init__(self, server: GitServer, path: str, work: Path):
        self.server, self.path, self.work = server, path, work
        self.head = ""

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/{self.path}"

    def commit(
        self,
        files: dict[str, str | bytes],
        message: str,
        executable: tuple = (),
        branch: str = "main",
        tag: str | None = None,
        date: str | None = None,
    ) -> str:
        """Commit `files` and push; `date` (e.g. "2020-01-01T00:00:00Z") backdates it."""
        for name, content in files.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
            if name in executable:
                target.chmod(0o755)
        git("add", "--all", ".", cwd=self.work)
        dated = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work, env=dated)
        if tag:
            git("tag", "-a", "-m", tag, tag, cwd=self.work)
        git(
            "push",
            "--quiet",
            "--follow-tags",
            str(self.server.root / self.path),
            f"HEAD:refs/heads/{branch}",
            cwd=self.work,
        )
        sha = git("rev-parse", "HEAD", cwd=self.work)
        if branch == "main":
            self.head = sha
        return sha
