"""A reader of Qt binary resource bundles (`.rcc`), in pure Python.

Qt applications such as GCompris ship their images inside `.rcc` files made by Qt's
`rcc` tool. The format (Qt's `rcc.cpp` writes it, `qresource.cpp` reads it): a header
(`qres`, version, offsets of the tree, data and names sections, and from version 3 a
flags word), a tree of fixed-size nodes (directories list their children, files point
into the data section), names stored as UTF-16 big-endian with their length and hash,
and data stored as a 4-byte length then the bytes, zlib-compressed (after a 4-byte
uncompressed size, Qt's `qCompress` layout) or zstd-compressed when the node says so.

Example:
    with RccBundle("/usr/share/gcompris-qt/rcc/explore_monuments.rcc") as bundle:
        for path in bundle.files():
            data = bundle.read(path)
"""

import struct
import zlib
from pathlib import Path

from dlkit.errors import DlkitError

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x01, 0x02, 0x04


class RccError(DlkitError):
    """The file is not a readable Qt resource bundle."""


class RccBundle:
    """The files of one `.rcc` bundle: `files()` lists their paths ("a/b/c.png", without
    Qt's leading ":/"), `read(path)` returns one file's bytes, decompressed."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._data = self.path.read_bytes()
        except OSError as error:
            raise RccError(f"{self.path}: cannot read it ({error.strerror or error})") from None
        data = self._data
        if len(data) < 20 or data[:4] != MAGIC:
            raise RccError(f"{self.path}: not a Qt resource bundle (no 'qres' header)")
        self.version, self._tree, self._payload, self._names = struct.unpack_from(">4I", data, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"{self.path}: Qt resource bundle version {self.version}, this reader knows 1-3")
        # A node: name offset (4), flags (2), then a directory's child count (4) and
        # first child (4), or a file's territory (2), language (2) and data offset (4);
        # from version 2 its modification time (8).
        self._node_size = 14 if self.version == 1 else 22
        if max(self._tree, self._payload, self._names) > len(data):
            raise RccError(f"{self.path}: truncated Qt resource bundle (offsets past the end)")
        self._index = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._data = b""
        return False

    def _node(self, number):
        offset = self._tree + number * self._node_size
        try:
            name, flags = struct.unpack_from(">IH", self._data, offset)
            first, second = struct.unpack_from(">II", self._data, offset + 6)
        except struct.error:
            raise RccError(f"{self.path}: truncated Qt resource bundle (node {number})") from None
        return name, flags, first, second

    def _name(self, offset):
        start = self._names + offset
        try:
            (length,) = struct.unpack_from(">H", self._data, start)
        except struct.error:
            raise RccError(f"{self.path}: truncated Qt resource bundle (name table)") from None
        raw = self._data[start + 6 : start + 6 + 2 * length]  # after the length and the hash
        if len(raw) != 2 * length:
            raise RccError(f"{self.path}: truncated Qt resource bundle (name table)")
        return raw.decode("utf-16-be", errors="replace")

    def _walk(self):
        """path -> (flags, data offset) of every file, from the root (node 0)."""
        index, stack, seen = {}, [(0, "")], set()
        while stack:
            number, prefix = stack.pop()
            if number in seen:
                raise RccError(f"{self.path}: malformed Qt resource bundle (a directory contains itself)")
            seen.add(number)
            name_offset, flags, first, second = self._node(number)
            name = "" if number == 0 else self._name(name_offset)
            path = f"{prefix}/{name}" if prefix else name
            if flags & DIRECTORY:
                count, child = first, second
                if count > len(self._data) // self._node_size:
                    raise RccError(f"{self.path}: malformed Qt resource bundle (node {number})")
                stack += [(child + k, path) for k in range(count)]
            else:
                index[path] = (flags, second)
        return index

    def files(self):
        """Every file's path, sorted."""
        if self._index is None:
            self._index = self._walk()
        return sorted(self._index)

    def read(self, path):
        """The bytes of the file at `path`, decompressed."""
        if self._index is None:
            self._index = self._walk()
        if path not in self._index:
            raise RccError(f"{self.path}: no file {path!r} in the bundle")
        flags, offset = self._index[path]
        start = self._payload + offset
        try:
            (size,) = struct.unpack_from(">I", self._data, start)
        except struct.error:
            raise RccError(f"{self.path}: truncated Qt resource bundle ({path})") from None
        payload = self._data[start + 4 : start + 4 + size]
        if len(payload) != size:
            raise RccError(f"{self.path}: truncated Qt resource bundle ({path})")
        try:
            if flags & COMPRESSED:
                return zlib.decompress(payload[4:])  # after qCompress's uncompressed size
            if flags & COMPRESSED_ZSTD:
                return _zstd(payload)
        except zlib.error as error:
            raise RccError(f"{self.path}: {path} does not decompress ({error})") from None
        return payload


def _zstd(payload):
    try:
        import zstandard
    except ImportError:
        raise RccError(
            "a zstd-compressed resource needs the zstandard package: pip install zstandard"
        ) from None
    return zstandard.ZstdDecompressor().decompress(payload)
