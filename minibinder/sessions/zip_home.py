"""Run inside a session (`python3 -c`, standard library only): write a zip of a folder to
standard output. Every regular file is included, whatever its link count; what a zip cannot hold
(symbolic links, sockets, pipes, devices, unreadable files) is listed in MINIBINDER-LEFT-OUT.txt.

It runs in the session's container, as the session's user, so the work counts against the
session's own CPU and memory limits, not minibinder's.
"""

import os
import sys
import time
import zipfile

LEFT_OUT = "MINIBINDER-LEFT-OUT.txt"


def main(root: str) -> None:
    left_out = []
    out = sys.stdout.buffer
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for folder, dirs, files in os.walk(root):  # never descends into symlinked folders
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, root)
                try:
                    info = os.lstat(path)
                except OSError as error:
                    left_out.append(f"{relative}: {error.strerror}")
                    continue
                if os.path.islink(path):
                    left_out.append(f"{relative}: a symbolic link to {os.readlink(path)}")
                    if name in dirs:
                        dirs.remove(name)
                elif name in dirs:
                    continue
                elif not os.path.isfile(path):
                    left_out.append(f"{relative}: not a regular file")
                else:
                    stamp = time.localtime(max(info.st_mtime, 315532800))[:6]  # zip: from 1980
                    entry = zipfile.ZipInfo(relative, date_time=stamp)
                    entry.external_attr = (info.st_mode & 0xFFFF) << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    try:
                        with (
                            open(path, "rb") as source,
                            archive.open(entry, "w", force_zip64=True) as target,
                        ):  # noqa: E501
                            while block := source.read(1 << 20):
                                target.write(block)
                    except OSError as error:
                        left_out.append(f"{relative}: {error.strerror}")
        if left_out:
            archive.writestr(LEFT_OUT, "Not in this archive:\n" + "\n".join(left_out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
