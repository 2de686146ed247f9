"""Rewrites the README's generated tables from the records in tools/results/bench.

The README holds two blocks between markers, `<!-- bench:begin -->` ... `<!-- bench:end -->`
and `<!-- pipeline:begin -->` ... `<!-- pipeline:end -->`: the Markdown `dlkit bench` and
`dlkit bench --pipeline` write, formatted from `tools/results/bench/bench.json` and
`pipeline.json`. This tool writes them again from those files, and the `.md` beside each
record, so a row measured again reaches the README by one command;
tests/test_shipped_figures.py checks that nothing else did.

Usage:
    dlkit bench --app trigger --into tools/results/bench/bench.json --why "..." --out DIR
    cp DIR/bench.json tools/results/bench/ && python tools/readme_tables.py
"""

import argparse
from pathlib import Path

from dlkit import io
from dlkit.bench import markdown, pipeline_markdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tools" / "results" / "bench"
BLOCKS = {"bench": markdown, "pipeline": pipeline_markdown}


def generated(name, results_dir=RESULTS):
    """The Markdown of block `name` from its record."""
    return BLOCKS[name](io.read_json(Path(results_dir) / f"{name}.json"))


def split(text, name):
    """(before and the begin marker, the block, the end marker and after)."""
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"README.md: expected one {begin.strip()} ... {end} block")
    head, rest = text.split(begin)
    inside, tail = rest.split(end)
    return head + begin, inside, end + tail


def block(text, name):
    """The text between the block's markers."""
    return split(text, name)[1]


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name in BLOCKS:
        fresh = generated(name)
        head, _, tail = split(text, name)
        text = head + fresh + tail
        with io.atomic_path(RESULTS / f"{name}.md") as tmp:
            tmp.write_text(fresh, encoding="utf-8")
    with io.atomic_path(readme) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(f"wrote {readme} and {', '.join(f'{name}.md' for name in BLOCKS)} in {RESULTS}")


if __name__ == "__main__":
    main()
