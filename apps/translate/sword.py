"""Bible verses from SWORD zText modules (Debian `sword-text-*`), decoded without libsword.

zText layout, per testament (`ot`, `nt`): `.bzv` holds one 10-byte record `<IIH`
(block, offset in the block, size) per verse in versification order, `.bzs` one 12-byte
record `<III` (file offset, compressed size, size) per block, `.bzz` the zlib blocks.
Texts in the same versification (KJV here) align verse by verse.
"""

import html
import re
import struct
import zlib
from pathlib import Path

from dlkit.errors import InvalidInputError, MissingSourceError

MODULES_DIR = Path("/usr/share/sword/modules/texts/ztext")
ENGLISH, SPANISH = "engKJV2006eb", "spaRV1909eb"
INSTALL = "sudo apt-get install sword-text-kjv sword-text-sparv"

_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TAG = re.compile(r"<[^>]+>")


def clean(markup):
    """OSIS markup -> plain text (notes dropped, tags stripped, entities decoded)."""
    text = _TAG.sub("", _NOTE.sub("", markup)).replace("\u00b6", "")  # pilcrow paragraph marks
    return " ".join(html.unescape(text).split())


def read_testament(module_dir, testament):
    """All verse texts of one testament, in versification order ('' for empty slots)."""
    base = Path(module_dir) / testament
    try:
        index = base.with_suffix(".bzv").read_bytes()
        blocks_index = base.with_suffix(".bzs").read_bytes()
        data = base.with_suffix(".bzz").read_bytes()
    except FileNotFoundError as error:
        raise InvalidInputError(f"{error.filename}: missing zText file") from None
    blocks = [struct.unpack_from("<III", blocks_index, i) for i in range(0, len(blocks_index) - 11, 12)]
    cache, verses = {}, []
    for i in range(0, len(index) - 9, 10):
        block, start, size = struct.unpack_from("<IIH", index, i)
        if size == 0 or block >= len(blocks):
            verses.append("")
            continue
        if block not in cache:
            offset, compressed, _ = blocks[block]
            try:
                cache[block] = zlib.decompress(data[offset : offset + compressed])
            except zlib.error as error:
                raise InvalidInputError(f"{base}.bzz: corrupt block {block} ({error})") from None
        verses.append(clean(cache[block][start : start + size].decode("utf-8", "replace")))
    return verses


def read_module(name, root=MODULES_DIR):
    path = Path(root) / name
    if not path.is_dir():
        raise MissingSourceError(f"Bible module {name} not found in {root}; install it with: {INSTALL}")
    return read_testament(path, "ot") + read_testament(path, "nt")


def bible_pairs(root=MODULES_DIR):
    """Aligned (English KJV, Spanish Reina-Valera 1909) verse pairs, both sides non-empty."""
    english, spanish = read_module(ENGLISH, root), read_module(SPANISH, root)
    if len(english) != len(spanish):
        raise InvalidInputError(f"{ENGLISH} and {SPANISH} do not share a versification")
    return [(en, es) for en, es in zip(english, spanish) if en and es]
