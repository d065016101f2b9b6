"""Kept work: a session's changed files copied out of its container as it ends, kept on the
shelf (a folder per person and repository under the data directory), and put back into the
next session of the same person and repository before its Jupyter server starts.

Why a folder of files rather than a Docker volume: the work is a few files per person, read
once and written once; a folder is sized, expired and deleted with plain file operations,
counted in the data directory's disk like the build logs, backed up with it, and its files are
0600 (the folder 0700), readable by minibinder's user only. A volume per person would be
mounted into sessions, which is exactly what must not happen: the kept files are copied over
the new image, where the repository's changes to the same files can be seen and kept apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from ..docker_client import Docker
from ..identity import COMMIT_TIME_LABEL
from .keeping import CHANGED, HOME, ancestors, changed_paths, choose_kept, conflicts, mine_name

FOLDER = "kept-work"  # the shelf, under the data directory
ARCHIVE, DETAILS = "home.tar", "work.json"
NOTEBOOK_UID = 1000
_HOME_NAME = HOME.rsplit("/", 1)[1]  # what get_archive names the home's members under


@dataclass(frozen=True)
class KeptWork:
    """What the shelf holds of one person's work on one repository."""

    key: str
    owner: str
    repo_url: str
    saved_at: float
    image: str  # the image the work was made on
    resolved_ref: str
    files: dict[str, dict] = field(default_factory=dict)  # path → {size, base, mine}
    skipped: list[tuple[str, int]] = field(default_factory=list)  # left out: (path, size)
    size: int = 0  # bytes on the shelf
    commit_time: float | None = None  # when the commit it was made on was committed, if known

    @classmethod
    def from_json(cls, text: str) -> KeptWork:
        data = json.loads(text)
        data["skipped"] = [tuple(item) for item in data.get("skipped", [])]
        return cls(**data)


class KeptForNewerCommit(Exception):
    """The kept work was made on a newer commit than the one launched: it is not put back
    (an older commit's files would read as the user's changes), and it stays kept."""


@dataclass(frozen=True)
class Restored:
    """What a launch put back, for the launch page: never in the launch log (names)."""

    saved_at: float
    files: int
    conflicts: list[tuple[str, str]]  # (path, where the user's copy went)
    skipped: list[tuple[str, int]]  # what the end of the last session could not keep

    def as_event_data(self) -> dict:
        return {
            "saved_at": self.saved_at,
            "files": self.files,
            "conflicts": [{"path": p, "mine": m} for p, m in self.conflicts],
            "skipped": [{"path": p, "size": s} for p, s in self.skipped],
        }


class Shelf:
    """The kept work of this installation: `<data_dir>/kept-work/<key>/` per person and
    repository, each with the archive and its details (`work.json`), files 0600."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, key: str) -> Path:
        return self.root / key

    def ready(self) -> None:
        """Make the shelf's folder, readable by minibinder's user only (even where it was
        made before, or by someone else, with a wider mode)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def get(self, key: str) -> KeptWork | None:
        try:
            return KeptWork.from_json((self.folder(key) / DETAILS).read_text())
        except (OSError, ValueError, TypeError):
            return None

    def current(self, key: str, now: float, hours: float) -> KeptWork | None:
        """The work under `key` if it is younger than `hours`; older work is removed."""
        work = self.get(key)
        if work is not None and now - work.saved_at > hours * 3600:
            self.delete(key)
            return None
        return work

    def all(self) -> list[KeptWork]:
        if not self.root.is_dir():
            return []
        found = [self.get(entry.name) for entry in self.root.iterdir() if entry.is_dir()]
        return sorted((work for work in found if work), key=lambda work: work.saved_at)

    def total_bytes(self) -> int:
        return sum(work.size for work in self.all())

    def delete(self, key: str) -> bool:
        folder = self.folder(key)
        existed = folder.is_dir()
        shutil.rmtree(folder, ignore_errors=True)
        return existed

    def delete_owner(self, owner: str) -> int:
        return sum(self.delete(work.key) for work in self.all() if work.owner == owner)

    def expire(self, now: float, hours: float) -> list[str]:
        """Remove work saved more than `hours` ago; the keys removed."""
        gone = [work.key for work in self.all() if now - work.saved_at > hours * 3600]
        for key in gone:
            self.delete(key)
        return gone

    def trim(self, total: int, keep: str = "") -> list[str]:
        """Remove the oldest work until all of it fits in `total` bytes (`keep` last)."""
        works = self.all()
        works.sort(key=lambda work: (work.key == keep, work.saved_at))
        size, gone = sum(work.size for work in works), []
        for work in works:
            if size <= total:
                break
            self.delete(work.key)
            size -= work.size
            gone.append(work.key)
        return gone

    def put(self, work: KeptWork, archive: Path) -> KeptWork:
        """Replace the work under `work.key` with `archive` (moved in), atomically."""
        self.ready()
        staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=self.root))
        try:
            os.replace(archive, staging / ARCHIVE)
            os.chmod(staging / ARCHIVE, 0o600)
            stored = KeptWork(**{**asdict(work), "size": (staging / ARCHIVE).stat().st_size})
            details = staging / DETAILS
            details.touch(mode=0o600)
            details.write_text(json.dumps(asdict(stored)))
            old = self.root / f".old-{work.key}-{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.folder(work.key), old)
            os.replace(staging, self.folder(work.key))
            shutil.rmtree(old, ignore_errors=True)
            return stored
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class _Chunks(io.RawIOBase):
    """A file over an iterator of byte chunks (Docker's archive stream), for tarfile's "r|"."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks, self._rest = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


class _Hashing(io.RawIOBase):
    def __init__(self, source: IO[bytes]):
        self.source, self.digest = source, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        return len(data)


def _members(chunks: Iterable[bytes]) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """(path relative to the home, member, archive) of a home's tar stream."""
    with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks)), mode="r|") as archive:
        for member in archive:
            name = member.name.lstrip("/")
            if name == _HOME_NAME or not name.startswith(_HOME_NAME + "/"):
                continue
            yield name[len(_HOME_NAME) + 1 :], member, archive


def file_hashes(chunks: Iterable[bytes], wanted: set[str]) -> dict[str, str]:
    """sha256 of the regular files among `wanted` in a home's tar stream."""
    found = {}
    for path, member, archive in _members(chunks):
        if path in wanted and member.isreg():
            extracted = archive.extractfile(member)
            if extracted is not None:
                found[path] = _sha256(extracted)
    return found


def _sha256(source: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := source.read(1 << 16):
        digest.update(block)
    return digest.hexdigest()


def save_work(
    docker: Docker,
    shelf: Shelf,
    *,
    container_id: str,
    image: str,
    owner: str,
    key: str,
    repo_url: str,
    resolved_ref: str,
    limit: int,
    commit_time: float | None = None,
    now: float | None = None,
) -> KeptWork | None:
    """Copy the files a session added or changed under its home onto the shelf (the smallest
    first, up to `limit` bytes; the largest are listed as skipped). None when it changed
    nothing (the work kept before, if any, stays)."""
    changed = changed_paths(docker.changes(container_id))
    if not changed:
        return None
    sizes = {
        path: member.size
        for path, member, _ in _members(docker.archive(container_id, HOME))
        if path in changed and member.isreg()
    }
    if not sizes:
        return None
    selection = choose_kept(sizes, limit)
    kept, folders = set(selection.kept), ancestors(selection.kept)
    files: dict[str, dict] = {}
    total = 0
    shelf.ready()
    handle, name = tempfile.mkstemp(prefix=".archive-", dir=shelf.root)
    try:
        with os.fdopen(handle, "wb") as raw, tarfile.open(fileobj=raw, mode="w|") as out:
            for path, member, archive in _members(docker.archive(container_id, HOME)):
                if member.isdir() and path in folders:
                    out.addfile(_as_users(member, path))
                elif member.isreg() and path in kept:
                    # The session may still be writing: a file that grew since it was
                    # chosen is left out, so the limit holds whatever it does meanwhile.
                    if member.size != sizes[path] or total + member.size > limit:
                        continue
                    total += member.size
                    source = archive.extractfile(member)
                    if source is None:
                        continue
                    hashing = _Hashing(source)
                    out.addfile(_as_users(member, path), io.BufferedReader(hashing))
                    files[path] = {"size": member.size, "mine": hashing.digest.hexdigest()}
        modified = {path for path in files if changed.get(path) == CHANGED}
        bases = file_hashes(docker.image_archive(image, HOME), modified) if modified else {}
        for path, details in files.items():
            details["base"] = bases.get(path)
        work = KeptWork(
            key,
            owner,
            repo_url,
            now or time.time(),
            image,
            resolved_ref,
            files,
            selection.skipped,
            commit_time=commit_time,
        )
        return shelf.put(work, Path(name))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _as_users(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """A member as it is put back: under its path relative to the home, the notebook user's
    (uid 1000), without set-id or sticky bits, whatever the session's copy said."""
    member.name = path
    member.uid, member.uname = NOTEBOOK_UID, "jovyan"
    member.mode &= 0o777
    return member


def restore_work(
    docker: Docker,
    shelf: Shelf,
    key: str,
    container_id: str,
    image: str,
    commit_time: float | None = None,
) -> Restored | None:
    """Put kept work back into a created (not yet started) container; None when there is
    none (`Shelf.current` said whether there is). Where the image now has another version of
    a file the user changed than the one the user started from, the user's copy goes beside
    it as `name.mine.ext`. Work made on a newer commit than `commit_time` (the launched
    commit's) raises KeptForNewerCommit; where either time is unknown, it goes back."""
    work = shelf.get(key)
    if work is None or not work.files:
        return None
    if is_older(commit_time, work.commit_time):
        raise KeptForNewerCommit(work.saved_at)
    clash: set[str] = set()
    if work.image != image:
        now_in_image = file_hashes(docker.archive(container_id, HOME), set(work.files))
        clash = conflicts(
            {path: details.get("base") for path, details in work.files.items()},
            {path: details.get("mine", "") for path, details in work.files.items()},
            now_in_image,
        )
    archive = shelf.folder(key) / ARCHIVE
    if clash:
        renamed = _renamed(archive.read_bytes(), {path: mine_name(path) for path in clash})
        docker.put_archive(container_id, HOME, renamed)
    else:
        with archive.open("rb") as stream:  # streamed: not the whole home in memory
            docker.put_archive(container_id, HOME, stream)
    return Restored(
        work.saved_at,
        len(work.files),
        sorted((path, mine_name(path)) for path in clash),
        list(work.skipped),
    )


def image_commit_time(docker: Docker, image: str) -> float | None:
    """When the commit an image was built from was committed (its label), or None: images
    of local folders, and images built before the label existed."""
    value = (docker.image_labels(image) or {}).get(COMMIT_TIME_LABEL, "")
    return float(value) if value.isdigit() else None


def is_older(launched: float | None, kept_on: float | None) -> bool:
    """Whether the launched commit is older than the one the work was kept on (both known)."""
    return launched is not None and kept_on is not None and launched < kept_on


def _renamed(data: bytes, renames: dict[str, str]) -> bytes:
    """The archive with some members under other names."""
    out_buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive,
        tarfile.open(fileobj=out_buffer, mode="w:") as out,
    ):
        for member in archive:
            source = archive.extractfile(member) if member.isreg() else None
            member.name = renames.get(member.name, member.name)
            out.addfile(member, source)
    return out_buffer.getvalue()
