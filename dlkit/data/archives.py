"""Datasets given as one archive (`--data photos.zip`, `.tar`, `.tar.gz`, `.tgz`,
`.tar.bz2`, `.tar.xz`): unpacked once into the dlkit cache, every member checked first.

An archive is refused whole, in one line naming it and the first bad member, when a
member would land outside the folder (an absolute name, `..`), is a link, a device or a
pipe, or when it unpacks to more than `MAX_RATIO` times its own size or `MAX_MEMBERS`
files (a zip bomb). Nothing is written before the checks pass, and the unpacked folder
appears in the cache only when complete (`build_once`).
"""

import hashlib
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from dlkit import io
from dlkit.errors import InvalidInputError

SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MAX_RATIO = 250  # unpacked bytes per archive byte; image datasets compress far less
MAX_MEMBERS = 2_000_000


def is_archive(path):
    return str(path).lower().endswith(SUFFIXES) and Path(path).is_file()


def unpack(path, progress=None):
    """The folder `path` unpacks to, from the cache when it was unpacked before (keyed by
    the archive's name, size and modification time). An archive holding one top folder
    gives that folder."""
    from dlkit.data.cache import build_once

    path = Path(path).expanduser()
    members = checked_members(path)
    info = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{info.st_size}:{info.st_mtime_ns}".encode()).hexdigest()[:16]
    stem = path.name.split(".")[0] or "archive"

    def build(folder):
        try:
            _extract(path, folder / "data", progress)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
            # a member whose bytes fail their CRC shows only now
            raise InvalidInputError(f"{path}: cannot be unpacked ({first_line(error)})") from None
        return {"archive": str(path), "members": len(members)}

    root = build_once(f"archive-{stem}-{key}", build, marker="unpacked.json") / "data"
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def checked_members(path):
    """[(name, size)] of the archive's files; raises InvalidInputError for an unreadable
    archive or the first member that may not be unpacked."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [(i.filename, i.file_size, _zip_kind(i)) for i in archive.infolist()]
        else:
            with tarfile.open(path) as archive:
                members = [(m.name, m.size, _tar_kind(m)) for m in archive.getmembers()]
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise InvalidInputError(f"{path}: not a readable archive ({first_line(error)})") from None
    if not members:
        raise InvalidInputError(f"{path}: an empty archive")
    if len(members) > MAX_MEMBERS:
        raise InvalidInputError(f"{path}: {len(members):,} members, more than {MAX_MEMBERS:,}")
    for name, _, kind in members:
        # Backslashes too: a zip made on Windows may separate folders with them.
        if io.leaves_folder(PurePosixPath(name.replace("\\", "/"))) or ":" in name:
            raise InvalidInputError(f"{path}: member {name!r} would be written outside the folder")
        if kind not in ("file", "dir"):
            raise InvalidInputError(
                f"{path}: member {name!r} is a {kind}; only files and folders are unpacked"
            )
    total = sum(size for _, size, _ in members)
    if total > MAX_RATIO * max(path.stat().st_size, 1):
        raise InvalidInputError(
            f"{path}: unpacks to {total:,} bytes, {total // max(path.stat().st_size, 1):,} times its size "
            "(a zip bomb?)"
        )
    return [(name, size) for name, size, kind in members if kind == "file"]


def first_line(error):
    """tarfile lists every compression it tried, one per line; the first says enough."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")


def _zip_kind(info):
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "link"
    return "dir" if info.is_dir() else "file"


def _tar_kind(member):
    if member.isdir():
        return "dir"
    if member.isfile():
        return "file"
    return "link" if member.issym() or member.islnk() else "device or pipe"


def _extract(path, folder, progress):
    folder.mkdir(parents=True)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for index, info in enumerate(infos):
                archive.extract(info, folder)
                if progress and (index + 1) % 500 == 0:
                    progress(index + 1, len(infos), f"unpacking {path.name}")
    else:
        with tarfile.open(path) as archive:
            archive.extractall(folder, filter="data")  # the same checks again, by tarfile
