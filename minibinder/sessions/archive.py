"""Turn a tar stream (Docker's archive of a folder) into a zip stream, without temporary files."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from collections.abc import Iterator

COPY_CHUNK = 1 << 16


class _ChunksReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size], self._buffer = self._buffer[:size], self._buffer[size:]
        return size


class _Sink:
    """A write-only, unseekable file: zipfile then writes data descriptors and streams."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def tar_to_zip(chunks: Iterator[bytes], strip: str = "") -> Iterator[bytes]:
    """Yield a zip of the tar stream's files and folders, names without the `strip` prefix."""
    sink = _Sink()
    source = io.BufferedReader(_ChunksReader(chunks), COPY_CHUNK)
    with (
        zipfile.ZipFile(
            sink,
            "w",
            zipfile.ZIP_DEFLATED,  # type: ignore[call-overload]
            allowZip64=True,
        ) as archive,
        tarfile.open(fileobj=source, mode="r|") as tar,
    ):
        for member in tar:
            name = member.name.removeprefix(strip).lstrip("/")
            if not name or not (member.isfile() or member.isdir()):
                continue
            stamp = time.localtime(max(member.mtime, 315532800))[:6]  # zip starts in 1980
            info = zipfile.ZipInfo(name + ("/" if member.isdir() else ""), date_time=stamp)
            info.external_attr = (member.mode & 0xFFFF) << 16
            if member.isdir():
                archive.writestr(info, b"")
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                content = tar.extractfile(member)
                if content is None:
                    continue
                with archive.open(info, "w", force_zip64=member.size > 2**31) as target:
                    while block := content.read(COPY_CHUNK):
                        target.write(block)
                        if len(sink._parts) > 16:
                            yield sink.drain()
            yield sink.drain()
    yield sink.drain()
