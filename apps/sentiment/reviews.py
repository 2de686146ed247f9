"""The offline default data: the human-rated sentences of the VADER paper (Hutto & Gilbert,
ICWSM 2014), shipped in the `vadersentiment==3.3.2` source distribution (MIT licence) as
`additional_resources/hutto_ICWSM_2014.tar.gz`.

Four sets of sentences, each rated by about 20 people from -4 (extremely negative) to +4;
each line is `id<TAB>mean rating<TAB>text`:
- movie: 10,605 sentences of movie reviews (the sentence polarity data of Pang & Lee);
  what the model trains on;
- tweets (4,200), amazon (3,708 product-review sentences), nyt (5,190 editorial
  sentences): cross-domain test sets.

The source distribution is fetched once with pip (from the user's own package index) into
the dlkit cache; `pip download vadersentiment==3.3.2 --no-deps --no-binary :all:` by hand
does the same.
"""

import hashlib
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from dlkit.errors import InvalidInputError, MissingSourceError
from dlkit.paths import cache_dir

PACKAGE = "vadersentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
FILES = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
CROSS_DOMAIN = ("tweets", "amazon", "nyt")
# The fixed split of the movie sentences: a hash of the sentence's letters and digits
# (so exact and near duplicates, differing in case, spacing or punctuation, share a
# split) below VAL_PERCENT goes to validation, below VAL + TEST to test, else training.
VAL_PERCENT = 15
TEST_PERCENT = 15


def archive(folder=None, fetch=True):
    """The path of the source distribution, fetched with pip into `folder` (default: the
    dlkit cache) when missing."""
    folder = Path(folder) if folder else cache_dir() / "downloads"
    path = folder / SDIST
    if path.is_file():
        return path
    if not fetch:
        raise MissingSourceError(f"{path} is missing")
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--no-binary", ":all:"]
    print(f"fetching the rated sentences: pip download {PACKAGE} (2.5 MB, once)", file=sys.stderr)
    done = subprocess.run([*command, "-d", str(folder), "-q"], capture_output=True, text=True)
    if done.returncode or not path.is_file():
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1][:200]
        raise MissingSourceError(
            f"cannot fetch the offline sentiment data ({reason}); run: {' '.join(command[2:])} -d {folder}"
        )
    return path


def read_rated(path_or_lines, name):
    """Parses `id<TAB>rating<TAB>text` lines -> list of (text, rating)."""
    lines = path_or_lines
    if isinstance(path_or_lines, (str, Path)):
        lines = Path(path_or_lines).read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 3 or not parts[2].strip():
            continue
        try:
            rows.append((parts[2].strip(), float(parts[1])))
        except ValueError:
            raise InvalidInputError(f"{name}:{number}: rating {parts[1]!r} is not a number") from None
    return rows


def load_sets(sdist=None):
    """{set name: [(text, mean rating)]} for the four rated sets of the archive."""
    sdist = Path(sdist) if sdist else archive()
    try:
        with tarfile.open(sdist) as outer:
            inner = tarfile.open(fileobj=outer.extractfile(INNER))
            members = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
            return {
                name: read_rated(inner.extractfile(members[file]).read().decode("utf-8").splitlines(), file)
                for name, file in FILES.items()
            }
    except (tarfile.TarError, KeyError, OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"{sdist}: not the expected {SDIST} ({error}); delete it to fetch again"
        ) from None


def duplicate_key(text):
    """What near duplicates share: the lowercase letters and digits of the text."""
    return re.sub(r"[\W_]+", "", text.lower())


def split_of(text, val_percent=VAL_PERCENT, test_percent=TEST_PERCENT):
    """ "train", "val" or "test" for a sentence, from a hash of its duplicate key."""
    bucket = int.from_bytes(hashlib.sha1(duplicate_key(text).encode("utf-8")).digest()[:4], "big") % 100
    if bucket < val_percent:
        return "val"
    return "test" if bucket < val_percent + test_percent else "train"


def split_rows(rows, val_percent=VAL_PERCENT, test_percent=TEST_PERCENT):
    """{"train", "val", "test": rows} by `split_of` each row's text."""
    splits = {"train": [], "val": [], "test": []}
    for row in rows:
        splits[split_of(row[0], val_percent, test_percent)].append(row)
    return splits
