"""Human-readable dates -> ISO `YYYY-MM-DD`, generated with Faker (dates) and Babel (text).

The offline default data of `dlkit translate`: real CLDR month and weekday names and
date patterns for many locales, written the ways people type them (any capitalisation,
abbreviations with or without a period, ordinal days, weekday names, numeric dates with
different separators and orders), for years 1500 to 2100.

Splits are disjoint by calendar day (a date in the test split never appears in
training), and a few (locale, pattern) combinations appear in the test split only, so
the test measures generalisation to unseen combinations too.

Numeric dates are ambiguous when both numbers could be the month ("3/5/1979"): no model
can tell without knowing the writer's locale. The generator follows one convention:
numeric dates are day first, as in every supported locale but US English; US month-first
dates are generated only when the day is above 12 (so unambiguous).
"""

import hashlib
import random
import unicodedata
from datetime import date

from dlkit.errors import MissingSourceError

LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "pt_BR", "pt_PT", "nl_NL")
FIRST, LAST = date(1500, 1, 1), date(2100, 12, 31)
SPLITS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
DEFAULT_SIZES = {"train": 120_000, "val": 4_000, "test": 10_000}

# Patterns besides each locale's CLDR short/medium/long/full formats. `{o}` is the
# ordinal day, written per language by `ordinal()`.
NAMED = (
    "d MMM yyyy",
    "d MMMM yyyy",
    "MMM d yyyy",
    "MMMM d, yyyy",
    "EEE d MMM yyyy",
    "EEEE d MMMM yyyy",
    "EEE, d MMM yyyy",
    "d-MMM-yyyy",
    "MMM yyyy d",
    "yyyy MMMM d",
)
ORDINAL = ("{o} MMMM yyyy", "MMMM {o}, yyyy", "EEEE {o} MMMM yyyy", "{o} MMM yyyy")
NUMERIC_DAY_FIRST = ("dd/MM/yyyy", "d/M/yyyy", "dd.MM.yyyy", "d.M.yyyy", "dd-MM-yyyy", "d M yyyy")
NUMERIC_YEAR_FIRST = ("yyyy-MM-dd", "yyyy/MM/dd", "yyyy.MM.dd", "yyyy MM dd")
NUMERIC_MONTH_FIRST = ("M/d/yyyy", "MM/dd/yyyy", "MM-dd-yyyy")

# (locale, pattern) pairs generated for the test split only.
HELD_OUT = {
    ("fr_FR", "MMM d yyyy"),
    ("de_DE", "EEE, d MMM yyyy"),
    ("es_ES", "d-MMM-yyyy"),
    ("it_IT", "MMMM d, yyyy"),
    ("pt_BR", "EEE d MMM yyyy"),
    ("nl_NL", "yyyy MMMM d"),
    ("en_GB", "MMM yyyy d"),
}


def _require():
    try:
        import babel.dates  # noqa: F401
        import faker  # noqa: F401
    except ImportError:
        raise MissingSourceError(
            "the date data needs Faker and Babel: pip install faker babel (or dlkit[train])"
        ) from None


def split_of(day):
    """The split a calendar day belongs to, from a hash of its ISO text (stable)."""
    digest = hashlib.sha1(day.isoformat().encode()).digest()
    value = int.from_bytes(digest[:4], "big") / 2**32
    for name, (low, high) in SPLITS.items():
        if low <= value < high:
            return name
    return "test"


def ordinal(day, language):
    """The ordinal day as written in `language` (1st, 2nd, 1er, 1.º ...)."""
    if language == "en":
        suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        return f"{day}{suffix}"
    if language == "fr":
        return "1er" if day == 1 else str(day)
    if language in ("es", "pt", "it"):
        return f"{day}º" if day == 1 else str(day)
    if language == "de":
        return f"{day}."
    if language == "nl":
        return f"{day}e"
    return str(day)


def full_year(pattern):
    """CLDR patterns with a 2-digit or bare year, rewritten with `yyyy` (never `YYYY`,
    the week-based year that prints 2013 for 31 Dec 2012)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "'":  # quoted literal
            j = pattern.index("'", i + 1) + 1
            out.append(pattern[i:j])
            i = j
        elif pattern[i] == "y":
            j = i
            while j < len(pattern) and pattern[j] == "y":
                j += 1
            out.append("yyyy")
            i = j
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def patterns_for(locale):
    """Every pattern used for `locale` (CLDR standard formats first)."""
    from babel.dates import get_date_format

    standard = [
        full_year(get_date_format(style, locale).pattern) for style in ("short", "medium", "long", "full")
    ]
    numeric = list(NUMERIC_DAY_FIRST) + list(NUMERIC_YEAR_FIRST)
    if locale == "en_US":
        numeric += list(NUMERIC_MONTH_FIRST)
    return list(dict.fromkeys(standard + list(NAMED) + list(ORDINAL) + numeric))


def is_month_first(pattern):
    stripped = pattern.replace("y", "")
    return stripped.find("M") < stripped.find("d") and "MMM" not in pattern


def render(day, locale, pattern, rng):
    """One human-readable string for `day`, with the typing variations people use."""
    from babel.dates import format_date

    language = locale.split("_")[0]
    parts = [format_date(day, part, locale=locale) if part.strip() else part for part in pattern.split("{o}")]
    text = ordinal(day.day, language).join(parts)
    if "MMM" in pattern or "EEE" in pattern:
        if rng.random() < 0.35:  # abbreviations typed without their period
            text = text.replace(".", "") if "." not in pattern.replace("{o}", "") else text
    roll = rng.random()
    if roll < 0.25:
        text = text.lower()
    elif roll < 0.35:
        text = text.upper()
    elif roll < 0.45:
        text = text.title()
    if rng.random() < 0.05:
        text = text.replace(", ", " ")
    return unicodedata.normalize("NFC", " ".join(text.split()))


def generate(split, count, seed=0, max_length=None, locales=LOCALES, with_source=False):
    """`count` (text, iso) pairs for `split`, reproducible from `seed`.

    Args:
        split: "train", "val" or "test". Days are drawn only from that split's days; the
            held-out (locale, pattern) combinations appear in "test" only.
        count: int.
        seed: int.
        max_length: int or None. Drop strings longer than this (the model's input length).
        locales: Babel locale names.
        with_source: bool. Return (text, iso, locale, pattern) tuples instead of pairs.
    """
    _require()
    from faker import Faker

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    offset = {"train": 0, "val": 1, "test": 2}[split]
    rng = random.Random(seed * 10 + offset)
    fake = Faker()
    fake.seed_instance(seed * 10 + offset)
    table = {locale: patterns_for(locale) for locale in locales}
    pairs = []
    while len(pairs) < count:
        day = fake.date_between_dates(FIRST, LAST)
        if split_of(day) != split:
            continue
        locale = rng.choice(locales)
        pattern = rng.choice(table[locale])
        if (locale, pattern) in HELD_OUT and split != "test":
            continue
        if is_month_first(pattern) and day.day <= 12 and day.day != day.month:
            continue  # ambiguous; numeric dates are day first unless the day is > 12
        text = render(day, locale, pattern, rng)
        if max_length and len(text) > max_length:
            continue
        pairs.append((text, day.isoformat(), locale, pattern) if with_source else (text, day.isoformat()))
    return pairs
