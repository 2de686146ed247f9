"""The offline text corpus: documents read from what Debian and Python install.

- the Python documentation's reST sources (Debian `python3.11-doc`), prose only: markup
  roles, directives, tables and code examples are left out;
- the standard library's docstrings (one document per module);
- fortunes (Debian `fortunes`, `fortunes-min`), fifty to a document;
- the King James Bible (Debian `sword-text-kjv`), a chapter-sized run of verses to a
  document.

A document is a list of paragraphs. Splits are made by document (a hash of its name), so
no held-out paragraph has a neighbour in training.
"""

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from dlkit.errors import MissingSourceError

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
FORTUNES = Path("/usr/share/games/fortunes")
INSTALL = "sudo apt-get install python3.11-doc fortunes sword-text-kjv"
SOURCES = ("python_docs", "docstrings", "fortunes", "bible")


@dataclass(frozen=True)
class Document:
    name: str  # unique, e.g. "python_docs/library/functions"
    paragraphs: tuple


# reST inline markup -> its text: :role:`text <target>` and :role:`text`, ``code``,
# `text <url>`_ and `text`_, |substitutions|, **strong**, *emphasis*.
_ROLE = re.compile(r":[\w:.-]+:`(?:~|!)?([^`<]*?)(?:\s*<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)(?:\s*<[^>]*>)?`_{1,2}")
_LITERAL = re.compile(r"``([^`]+)``")
_SUBSTITUTION = re.compile(r"\|([^|\s][^|]*)\|_?")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>_:.])\1{2,}\s*$")


def rest_prose(text):
    """The prose paragraphs of a reST file: directives (`.. x::` and their indented
    bodies), literal blocks (after `::`), doctests, tables and heading underlines are
    dropped; inline markup is replaced by its text."""
    paragraphs, current, skip_indent = [], [], None
    literal_next = False
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not stripped or indent > skip_indent:
                continue
            skip_indent = None
        if not stripped:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        if stripped.startswith(".. ") or stripped == "..":
            if current:
                paragraphs.append(" ".join(current))
                current = []
            skip_indent = indent
            continue
        if literal_next and indent > 0:
            skip_indent = indent - 1
            literal_next = False
            continue
        literal_next = False
        if stripped.startswith((">>>", "...", "+-", "|", "$ ")) or _UNDERLINE.match(stripped):
            continue
        if stripped.endswith("::"):
            literal_next = True
            stripped = stripped[:-1] if not stripped[:-2].endswith(" ") else stripped[:-2]
        current.append(stripped)
    if current:
        paragraphs.append(" ".join(current))
    cleaned = []
    for paragraph in paragraphs:
        for pattern in (_ROLE, _LINK, _LITERAL, _SUBSTITUTION, _EMPHASIS):
            paragraph = pattern.sub(r"\1", paragraph)
        paragraph = " ".join(paragraph.split())
        if len(paragraph.split()) >= 4:  # headings and list stubs carry little context
            cleaned.append(paragraph)
    return cleaned


def python_docs(root=PYTHON_DOCS):
    files = sorted(Path(root).rglob("*.rst.txt")) if Path(root).is_dir() else []
    for path in files:
        paragraphs = rest_prose(path.read_text(encoding="utf-8", errors="replace"))
        if paragraphs:
            name = str(path.relative_to(root)).removesuffix(".rst.txt")
            yield Document(f"python_docs/{name}", tuple(paragraphs))


def docstrings(root=None):
    """Module, class and function docstrings of the standard library's top-level modules
    and packages (tests and private modules left out), one document per module."""
    import sysconfig

    root = Path(root or sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p.startswith(("_", "test", "idle", "site-packages", "dist-packages")) for p in parts):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        paragraphs = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    paragraphs += [
                        " ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if len(p.split()) >= 4
                    ]
        paragraphs = [p for p in paragraphs if not p.startswith(">>>")]
        if paragraphs:
            yield Document("docstrings/" + "/".join(parts).removesuffix(".py"), tuple(paragraphs))


def fortunes(root=FORTUNES, per_document=50):
    files = (
        sorted(p for p in Path(root).iterdir() if p.is_file() and not p.suffix) if Path(root).is_dir() else []
    )
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        items = [" ".join(f.split()) for f in re.split(r"^%\s*$", text, flags=re.M)]
        items = [f for f in items if len(f.split()) >= 4]
        for start in range(0, len(items), per_document):
            yield Document(
                f"fortunes/{path.name}/{start // per_document}", tuple(items[start : start + per_document])
            )


def bible(per_document=30):
    """King James verses, `per_document` consecutive verses to a document."""
    from dlkit.apps.translate.sword import ENGLISH, read_module
    from dlkit.errors import InvalidInputError

    try:
        verses = [v for v in read_module(ENGLISH) if v]
    except (MissingSourceError, InvalidInputError):  # the other sources still serve
        return
    for start in range(0, len(verses), per_document):
        yield Document(f"bible/{start // per_document}", tuple(verses[start : start + per_document]))


def documents(sources=SOURCES):
    """Every document of the named sources; a MissingSourceError when none is installed."""
    readers = {"python_docs": python_docs, "docstrings": docstrings, "fortunes": fortunes, "bible": bible}
    found = [doc for name in sources for doc in readers[name]()]
    if not found:
        raise MissingSourceError(f"no text corpus found; install one with: {INSTALL}")
    return found


def split_of(name, val_fraction=0.05, test_fraction=0.05):
    """ "train", "val" or "test" for a document name, stable across runs and machines."""
    position = int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if position < val_fraction:
        return "val"
    if position < val_fraction + test_fraction:
        return "test"
    return "train"
