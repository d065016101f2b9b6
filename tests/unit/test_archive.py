"""tar stream → zip stream, as the download of a session's home folder does it."""

import io
import tarfile
import zipfile

from minibinder.sessions.archive import tar_to_zip


def make_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in [
            ("jovyan/notes.txt", b"hello"),
            ("jovyan/data/big.bin", bytes(range(256)) * 4096),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
        folder = tarfile.TarInfo("jovyan/empty")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        link = tarfile.TarInfo("jovyan/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return buffer.getvalue()


def test_tar_to_zip_in_small_chunks():
    data = make_tar()
    chunks = (data[i : i + 1000] for i in range(0, len(data), 1000))
    zipped = b"".join(tar_to_zip(chunks, strip="jovyan"))
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert sorted(archive.namelist()) == ["data/big.bin", "empty/", "notes.txt"]
        assert archive.read("notes.txt") == b"hello"
        assert archive.read("data/big.bin") == bytes(range(256)) * 4096
        assert archive.testzip() is None
